import sys

from llm_cost_tracker.cli import main

sys.exit(main())
