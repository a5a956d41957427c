"""ksmrepro: KSM and mm reproducers against a simulated Linux kernel."""

__version__ = "0.1.0"
