"""Threat models: what the attacker controls and what reaches the victim.

`delivery`: the attacked image as the victim receives it (float, an 8-bit PNG, a JPEG).
"""

from miga.threats.delivery import Delivery, JPEGDelivery, NoDelivery, PNGDelivery

__all__ = ["Delivery", "JPEGDelivery", "NoDelivery", "PNGDelivery"]
