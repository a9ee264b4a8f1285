"""What running the ensemble on survivors saves: attack=worst_case against every member on
every image, same models, same images, same process.

    python -m benchmarks.worst_case                       # the demo, 64 px, minutes on 2 cores
    python -m benchmarks.worst_case --images 14 --size 128 --epsilon 0.5 --queries 200

The ensemble is the default member list minus what a CPU cannot afford (conf/attack/
worst_case.yaml: MIGA, I-FGSM at its tuned step, the APGD members where their configs exist,
Square with `--queries` queries), on the demo photos, the demo DnCNN and the demo classifier,
at L∞ `--epsilon`/255. `all_members` runs each member alone on every eligible image, in the
same order; `worst_case` runs the ensemble. The two alternate for `--reps` repetitions; the
ratio of the medians is the headline (wall and CPU time). Prints one JSON line; `--out` appends
it to a file (benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from hydra.utils import instantiate

from miga.attacks.state import AttackInputs, Victim
from miga.data.demo_photos import DemoPhotos
from miga.threats.noise import GaussianNoise
from tests.conftest import compose_config


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=14)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epsilon", type=float, default=0.5, help="L∞ budget in /255 units")
    parser.add_argument("--steps", type=int, default=10, help="gradient members' steps")
    parser.add_argument("--queries", type=int, default=100, help="Square's queries")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    overrides = [
        "attack=worst_case",
        f"budget.epsilon={args.epsilon / 255!r}",
        f"attack.members.square.n_queries={args.queries}",
    ]
    cfg = compose_config(overrides)
    for name, member in cfg.attack.members.items():
        if "steps" in member and name != "square":
            member.steps = args.steps
    attack = instantiate(cfg.attack)
    victim = Victim(instantiate(cfg.denoiser), instantiate(cfg.downstream))
    victim.denoiser.requires_grad_(False).eval()
    victim.downstream.requires_grad_(False).eval()

    photos = DemoPhotos(size=args.size)
    items = [photos[i] for i in range(min(args.images, len(photos)))]
    clean = torch.stack([item["image"] for item in items])
    label = torch.tensor([item["label"] for item in items])
    index = torch.tensor([item["index"] for item in items])
    noisy = GaussianNoise(25.0)(clean, index, 0)
    with torch.no_grad():
        denoised = victim.denoiser(noisy)
        eligible = victim.downstream(denoised).argmax(1) == label
    inputs = AttackInputs(clean, noisy, denoised, index, label=label, seed=0)
    everyone = inputs.select(eligible)

    def all_members() -> None:
        for member in attack.members.values():
            member(everyone, victim)

    def worst_case() -> dict:
        result = attack(inputs, victim)
        return {name: result.broken_by.count(name) for name in attack.members}

    timings: dict[str, list[tuple[float, float]]] = {"all_members": [], "worst_case": []}
    counts = {}
    for rep in range(args.reps):
        order = ["all_members", "worst_case"] if rep % 2 == 0 else ["worst_case", "all_members"]
        for path in order:
            wall, cpu = time.perf_counter(), time.process_time()
            with torch.enable_grad():
                out = all_members() if path == "all_members" else worst_case()
            timings[path].append((time.perf_counter() - wall, time.process_time() - cpu))
            if out:
                counts = out
    median = {k: [statistics.median(t[i] for t in v) for i in (0, 1)] for k, v in timings.items()}
    record = {
        "benchmark": "worst_case",
        "members": list(attack.members),
        "images": len(items),
        "eligible": int(eligible.sum()),
        "size": args.size,
        "epsilon_255": args.epsilon,
        "steps": args.steps,
        "square_queries": args.queries,
        "broken_by": counts,
        "reps": args.reps,
        "threads": args.threads,
        "all_members_s": round(median["all_members"][0], 3),
        "worst_case_s": round(median["worst_case"][0], 3),
        "ratio_wall": round(median["worst_case"][0] / median["all_members"][0], 3),
        "ratio_cpu": round(median["worst_case"][1] / median["all_members"][1], 3),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    line = json.dumps(record)
    print(line)
    if args.out is not None:
        with open(args.out, "a") as handle:
            handle.write(line + "\n")
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
