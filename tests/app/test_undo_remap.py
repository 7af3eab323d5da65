"""A class edit remaps every step of the undo history; what the remap loses (the values of a
merged or deleted class) is kept compactly to undo the class edit exactly (`ValuesBeforeRemap`)."""
from __future__ import annotations

import numpy as np
import pytest

from qgn.annotation.edit import LabelEdit
from qgn_studio.tools.commands import EditCommand

IGNORE = 255


def table_of(mapping: dict) -> np.ndarray:
    table = np.full(max(mapping) + 1, -1, np.int64)
    for old, new in mapping.items():
        table[old] = new
    return table


MERGE_1_INTO_2 = table_of({0: 0, 1: 1, 2: 1, 3: 2, 4: 3, IGNORE: IGNORE})  # ids above shift down
DELETE_3 = table_of({0: 0, 1: 1, 2: 2, 3: IGNORE, 4: 3, IGNORE: IGNORE})
RENAME = table_of({0: 0, 1: 1, 2: 2, 3: 3, 4: 4, IGNORE: IGNORE})


def random_edit(rng, n: int, rows: bool, share: float) -> LabelEdit:
    """An edit of n pixels whose values are mostly 0 and 4, a ``share`` of them the classes 2 and 3
    that the merge and the delete take, and some void."""
    def values():
        v = rng.choice([0, 4, IGNORE], n, p=[0.6, 0.35, 0.05]).astype(np.uint8)
        take = rng.random(n) < share
        v[take] = rng.choice([2, 3], int(take.sum()))
        return v
    if rows:
        mask = np.zeros((n // 50 + 1, 50), bool)
        mask.reshape(-1)[:n] = True
        return LabelEdit.of_rows(7, mask, values(), values())
    return LabelEdit(np.sort(rng.choice(10 * n, n, replace=False)).astype(np.int64), values(), values())


@pytest.mark.parametrize("table", [MERGE_1_INTO_2, DELETE_3], ids=["merge", "delete"])
@pytest.mark.parametrize("rows", [False, True], ids=["pixels", "rows"])
def test_an_undone_class_edit_gives_every_step_its_values_back_exactly(qapp, table, rows):
    rng = np.random.default_rng(1)
    edit = random_edit(rng, 20_000, rows, share=0.05)
    command = EditCommand(None, edit, "Paint")
    lost = command.remap(table, np.uint8)
    np.testing.assert_array_equal(command.edit.before, table[edit.before])
    np.testing.assert_array_equal(command.edit.after, table[edit.after])
    lost.put_back(command)
    assert command.edit.before.dtype == edit.before.dtype
    np.testing.assert_array_equal(command.edit.before, edit.before)
    np.testing.assert_array_equal(command.edit.after, edit.after)
    np.testing.assert_array_equal(command.edit.index, edit.index)
    # a 5 % share of the taken classes keeps an eighth of a byte a value and those values, not a copy
    assert lost.nbytes < 0.3 * (edit.before.nbytes + edit.after.nbytes)


def test_a_class_edit_that_loses_nothing_keeps_nothing(qapp):
    edit = random_edit(np.random.default_rng(2), 5_000, False, share=0.05)
    assert EditCommand(None, edit, "Paint").remap(RENAME, np.uint8) is None
    untouched = LabelEdit(edit.index, np.zeros(5_000, np.uint8), np.full(5_000, 4, np.uint8))
    assert EditCommand(None, untouched, "Fill").remap(MERGE_1_INTO_2, np.uint8) is None


def test_a_merge_into_the_class_a_step_holds_most_keeps_only_the_merged_classs_values(qapp):
    # the inverse of a merge takes the shared value back to the class the step holds most: only
    # the merged class's values are kept (and a bit a value), not the target's too
    rng = np.random.default_rng(3)
    values = np.where(rng.random(40_000) < 0.9, 1, 2).astype(np.uint8)  # 90 % the target, 10 % merged
    edit = LabelEdit(np.arange(40_000, dtype=np.int64), values, np.zeros(40_000, np.uint8))
    command = EditCommand(None, edit, "Fill")
    lost = command.remap(MERGE_1_INTO_2, np.uint8)
    assert lost.after is None and len(lost.before[1]) == int((values == 2).sum())
    assert lost.nbytes < 0.25 * values.nbytes
    lost.put_back(command)
    np.testing.assert_array_equal(command.edit.before, values)
    np.testing.assert_array_equal(command.edit.after, edit.after)


def test_what_a_merge_takes_from_an_open_map_is_kept_a_bit_a_pixel_and_given_back_as_it_was(qapp):
    from qgn.classes import ClassSet
    from qgn.classes_edit import delete_class, inverse_patch
    from qgn_studio.tools.commands import PixelsBeforeRemap

    classes = ClassSet(("a", "b", "c", "d"), ((1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4)), 255)
    rng = np.random.default_rng(4)
    label = rng.choice([0, 1, 2, 3, 255], (300, 400)).astype(np.uint8)
    edit = delete_class(classes, 1, 2)  # merge b into c
    patch = inverse_patch(label, edit)
    kept = PixelsBeforeRemap(patch, label, edit.lut())
    for got, expected in zip(kept.patch(), patch):
        np.testing.assert_array_equal(got, expected)
    taken = int((label == 1).sum())
    held = kept.bits.nbytes + kept.value.nbytes + kept.table.nbytes
    assert held < 1.2 * taken + label.size / 8 + 1024  # ~1 byte a taken pixel, not three int64s
    assert sum(a.nbytes for a in patch) == 24 * taken
