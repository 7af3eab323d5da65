"""The annotation tools: paint / fill / erase / pick as undoable edits, and the controller that turns
pointer gestures on the canvas into them."""
from qgn_studio.tools.commands import EditCommand
from qgn_studio.tools.controller import TOOLS, ToolController

__all__ = ["EditCommand", "TOOLS", "ToolController"]
