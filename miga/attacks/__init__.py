"""Attacks: the one attack loop (`base.py`) and one file per attack, named like its
conf/attack/<name>.yaml (`random_noise.py` for `attack=random`: a module named `random` would
read as the standard library's).

    miga.py           MIGA, the paper's attack (docs/architecture.md §2)
    ifgsm.py          I-FGSM on the downstream loss (Kurakin et al. 2017)
    pgd.py            PGD on the output error, L∞ (`PGD`) and L2 (`PGDL2`) (Madry et al. 2018)
    obsatk.py         ObsAtk, zero-mean L2 PGD (Yan et al. 2022)
    denoising_pgd.py  denoising-PGD, Gaussian-like L2 PGD (Ning et al. 2023)
    random_noise.py   noise of the budget's full norm
    none.py           δ = 0
    apgd.py           APGD-CE, APGD-DLR, APGD-T (Croce & Hein 2020): apgd_ce, apgd_dlr, apgd_t
    square.py         Square Attack, gradient-free (Andriushchenko et al. 2020)
    worst_case.py     the worst case over an ensemble of attacks

and what they share: `state.py` (what an attack sees), `terms.py` (loss terms), `budgets.py`
and `denoising_budgets.py` (threat-model sets δ is projected on), `optim.py` (step rules).
Every public class is exported here, so configs read `_target_: miga.attacks.MIGA`; the
submodule is imported when the name is first read (miga.utils.exports).
"""

from miga.utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "base": ["Attack", "AttackResult", "StoppingRule", "StopWhenMisclassified"],
        "state": ["AttackInputs", "StepState", "Victim"],
        "terms": [
            "DeltaNorm",
            "DifferenceOfLogitsRatio",
            "InputFidelity",
            "LossTerm",
            "OutputDistortion",
            "OutputFidelity",
            "TaskCrossEntropy",
        ],
        "budgets": ["Budget", "L2Ball", "LinfBall", "NoProjection", "Unbounded"],
        "denoising_budgets": ["CircumscribedL2Ball", "GaussianLikeL2Ball", "ZeroMeanL2Ball"],
        "optim": ["NormalizedGradientDescent", "SignGradientDescent"],
        "miga": ["MIGA"],
        "ifgsm": ["IFGSM"],
        "pgd": ["PGD", "PGDL2"],
        "obsatk": ["ObsAtk"],
        "denoising_pgd": ["DenoisingPGD"],
        "random_noise": ["RandomNoise"],
        "none": ["NoAttack"],
        "apgd": ["APGD", "APGDStep"],
        "square": ["Square"],
        "worst_case": ["WorstCase"],
    },
)
