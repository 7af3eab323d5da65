import sys

from qgn.cli.main import main

sys.exit(main())
