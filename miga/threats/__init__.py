"""Threat models: what the attacker controls and what the victim receives.

Noise (how x becomes the denoiser's input x_n), the sensor (noise draws the attacker never
learns), the surrogate choice (which models the attack optimises through) and the delivery (the
attacked image as the victim receives it: float, an 8-bit PNG, a JPEG). They sit below the
attack and the module, both of which use them, and import neither (docs/architecture.md §4).
"""

from miga.threats.delivery import Delivery, JPEGDelivery, NoDelivery, PNGDelivery
from miga.threats.noise import FromDisk, GaussianNoise
from miga.threats.sensor import SensorNoise
from miga.threats.surrogate import surrogate

__all__ = [
    "Delivery",
    "FromDisk",
    "GaussianNoise",
    "JPEGDelivery",
    "NoDelivery",
    "PNGDelivery",
    "SensorNoise",
    "surrogate",
]
