"""`python -m mlops_cli` is the `mlops` command."""

import sys

from mlops_cli.main import main

sys.exit(main())
