import sys

from mock_provider._cli import main

sys.exit(main())
