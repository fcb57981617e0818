"""Do ours and the official AttentionGAN train the same way, step after step? A lock-step comparison.

    python benchmarks/attention_lockstep.py --official /path/to/AttentionGAN --data DIR [--steps 300] [--ngf 16]

Equal first steps do not prove equal training, and two GAN runs drift apart from the last bit of a float
within a few hundred steps. So this runs three trainings from the same initial weights on the same batches,
with the image pools drawing the same random numbers:

* ``official``: the official ``AttentionGANModel.optimize_parameters`` (loaded at run time from a local clone;
  its licence, CC BY-NC-SA, keeps it out of this repository);
* ``ours``: ``Trainer.train_step`` of the ``attentiongan`` model (official initial weights imported);
* ``official'``: the official code again, its initial weights changed by one part in 1e7 (float rounding noise).

It prints, at a few steps, how far ``ours`` and ``official'`` are from ``official`` (the L2 norm of the
generators' weight difference over the L2 norm of the official weights' change since the start, convolution
weights only: Adam turns the rounding noise of a zero gradient, e.g. of a conv bias before instance norm, into a
full ±lr step), and the mean foreground mask of both generators on a fixed probe batch). If ours
stays within the distance that mere rounding noise causes, the two codes train identically and any
difference seen over whole runs comes from the random streams (data order, flips, pool draws), not the code.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from attentiongan_step import official_model, our_trainer  # noqa: E402


class PoolDraws:
    """Stands in for the ``random`` module inside the official ``ImagePool``: the draws of our pool's generator."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def uniform(self, a, b):
        return a + (b - a) * torch.rand((), generator=self.generator).item()

    def randint(self, a, b):  # inclusive, as random.randint
        return int(torch.randint(a, b + 1, (), generator=self.generator))


def sync_pools(model, trainer) -> None:
    """The official pools draw from copies of our pools' generators (one per domain, as ours)."""
    import util.image_pool as official_pool

    for pool_name, domain in (("fake_B_pool", "B"), ("fake_A_pool", "A")):
        pool = getattr(model, pool_name)
        generator = torch.Generator()
        generator.set_state(trainer.pools[domain].generator.get_state())
        draws, query = PoolDraws(generator), pool.query

        def synced(images, query=query, draws=draws):
            official_pool.random = draws
            return query(images)

        pool.query = synced


def generator_weights(model_or_trainer) -> torch.Tensor:
    if hasattr(model_or_trainer, "netG_A"):
        nets = [model_or_trainer.netG_A, model_or_trainer.netG_B]
    else:
        g = model_or_trainer.method.generators
        nets = [g["AtoB"], g["BtoA"]]
    # weights only: the biases of convolutions followed by instance norm get no gradient but rounding noise
    return torch.cat([p.detach().flatten() for n in nets for p in n.state_dict().values() if p.dim() > 1])


@torch.no_grad()
def foreground_means(model_or_trainer, probe) -> tuple:
    if hasattr(model_or_trainer, "netG_A"):
        fg_B = 1 - model_or_trainer.netG_A(probe["A"])[20][:, :1]  # a10: the background map
        fg_A = 1 - model_or_trainer.netG_B(probe["B"])[20][:, :1]
    else:
        g = model_or_trainer.method.generators
        fg_B, fg_A = g["AtoB"](probe["A"]).foreground(), g["BtoA"](probe["B"]).foreground()
    return float(fg_B.mean()), float(fg_A.mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="CycleGAN layout (trainA, trainB)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--ndf", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from unpaired.data import UnpairedFolders, TrainTransform

    torch.manual_seed(args.seed)
    official = official_model(args.official, args.ngf, args.ndf, 1)
    perturbed = copy.deepcopy(official)
    with torch.no_grad():
        for net in (perturbed.netG_A, perturbed.netG_B, perturbed.netD_A, perturbed.netD_B):
            for p in net.parameters():
                p.mul_(1 + 1e-7 * torch.randn_like(p))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = our_trainer(official, args.ngf, args.ndf, 1, Path(tmp),
                              extra=[f"train.seed={args.seed}", "train.pool_size=50"])
        sync_pools(official, trainer)
        sync_pools(perturbed, trainer)
        data = UnpairedFolders(args.data, transform=TrainTransform(args.size, args.size, flip=True), seed=args.seed)
        probe = {k: torch.stack([data[10_000 + i][k] for i in range(4)]) for k in ("A", "B")}
        start = generator_weights(official)
        print(f"# {args.steps} steps, ngf {args.ngf}, ndf {args.ndf}, 9 blocks, {args.size} px, batch 1, "
              f"seed {args.seed}")
        print(f"{'step':>5}  {'ours vs official':>18}  {'rounding noise':>16}  {'fg mask (AtoB, BtoA): official':>32}  "
              f"{'ours':>16}  {'official+noise':>16}")
        for step in range(1, args.steps + 1):
            item = data[step - 1]
            batch = {"A": item["A"][None], "B": item["B"][None]}
            for model in (official, perturbed):
                model.set_input({**batch, "A_paths": [], "B_paths": []})
                model.optimize_parameters()
            trainer.train_step(trainer.to_device(batch))
            if step in (1, 2, 5, 10, 20, 50) or step % 50 == 0 or step == args.steps:
                ref = generator_weights(official)
                scale = (ref - start).norm()  # how far training has moved the weights
                d_ours = float((generator_weights(trainer) - ref).norm() / scale)
                d_noise = float((generator_weights(perturbed) - ref).norm() / scale)
                fo, fu, fp = (foreground_means(m, probe) for m in (official, trainer, perturbed))
                print(f"{step:>5}  {d_ours:>18.2e}  {d_noise:>16.2e}  {fo[0]:>22.3f}, {fo[1]:.3f}  "
                      f"{fu[0]:>9.3f}, {fu[1]:.3f}  {fp[0]:>9.3f}, {fp[1]:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
