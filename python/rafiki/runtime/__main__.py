"""`python -m rafiki.runtime`: host one model class for a worker (docs/runtime-protocol.md)."""

import sys

from rafiki.runtime import main

if __name__ == "__main__":
    sys.exit(main())
