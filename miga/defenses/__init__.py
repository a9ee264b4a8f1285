"""Input transforms placed before the denoiser (docs/architecture.md §3), one file per defense.

Each is a `Defense`: `forward` is the real transform used at evaluation, `attack_forward` the
path an attack differentiates through (the differentiable or BPDA form when the attack is
adaptive, the identity when it is not). Configs read `_target_: miga.defenses.JPEG`; the
submodule is imported when the name is first read (miga.utils.exports).
"""

from miga.utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "base": ["Defense", "NoDefense", "bpda"],
        "bit_depth": ["BitDepth"],
        "blur": ["GaussianBlur"],
        "jpeg": ["JPEG"],
        "median": ["MedianFilter"],
        "resize_pad": ["ResizePad"],
    },
)
