"""`python -m flexiq_trt`."""

import sys

from flexiq_trt.cli.main import main

sys.exit(main())
