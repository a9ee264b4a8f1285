"""Denoisers: one file per architecture and one wrapper (`Denoiser`: padding, tiling, clamping,
activation recomputation) around any of them. Weight files load through miga.checkpoints.

Configs read `_target_: miga.denoisers.Restormer`; the submodule is imported when the name is
first read (miga.utils.exports), so BM3D's optional package is needed only by `denoiser=bm3d`.
"""

from miga.utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "wrapper": ["Denoiser"],
        "bm3d": ["BM3D"],
        "classical": ["GaussianFilter"],
        "dncnn": ["DnCNN"],
        "ffdnet": ["FFDNet"],
        "nafnet": ["NAFNet"],
        "restormer": ["Restormer"],
        "swinir": ["SwinIR"],
    },
)
