import sys

from qgn_studio.app import main

sys.exit(main())
