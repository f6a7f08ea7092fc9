import sys

from candor.cli import main

sys.exit(main())
