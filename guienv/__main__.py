import sys

from guienv.run.cli import main

sys.exit(main())
