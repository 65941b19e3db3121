"""Rafiki-rs Python package.

- `rafiki.model`: the model SDK (BaseModel, knobs, logger, dataset utilities, local testing);
- `rafiki.params`: the parameters codec (what `dump_parameters()` becomes on the wire);
- `rafiki.runtime`: the child process a Rust worker runs to host one model class;
- `rafiki.client`: a client for the admin's REST API;
- `rafiki.constants`: the enums of the wire contract.
"""

__version__ = "0.1.0"
