"""siyu (私域): private-domain operations platform for retail and consumer brands."""

__version__ = "0.1.0"
