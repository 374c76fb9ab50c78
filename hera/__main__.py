import sys

from hera.cli import main

sys.exit(main())
