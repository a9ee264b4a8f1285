"""Per-image scorers (one row per image), the summary rules (each value a reduction of one
column) and their confidence intervals.

Configs read `_target_: miga.metrics.ImageQuality`; the submodule is imported when the name is
first read (miga.utils.exports), so the report can read `miga.metrics.summary` without models.
"""

from miga.utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "scorers": [
            "AttackBookkeeping",
            "Classification",
            "DeltaPSNR",
            "HeldoutClassification",
            "ImageQuality",
            "Outcome",
            "PerturbationSize",
            "Scorer",
            "TargetedSuccess",
        ],
        "critic_score": ["CriticScore"],
        "lpips": ["LPIPS"],
        "semantic": ["FeatureShift", "OCRScorer", "ReferenceSimilarity"],
    },
)
