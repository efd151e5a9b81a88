"""`hieramp train`: train the digits model (VQVAE, VAR, class-token fine-tune) on scikit-learn's
digits and write the files `load_model` reads; the bundled `digits` preset was made this way."""
from dataclasses import replace

from ..train.recipe import Recipe, train_digits
from .common import count, output_dir, seed

MAX_STEPS = 10_000_000


def add_parser(subparsers):
    p = subparsers.add_parser("train", help="train the small digits model from scratch", description=__doc__)
    p.add_argument("--out", required=True, help="output directory for ar-ckpt-digits.pth, vae-digits.pth, "
                                                 "heldout.npz and training.json")
    p.add_argument("--seed", type=seed, default=0, help="training seed (the held-out split is fixed)")
    defaults = Recipe()
    p.add_argument("--vae-steps", type=count("VQVAE steps", 1, MAX_STEPS), default=defaults.vae.steps,
                   help="VQVAE optimisation steps")
    p.add_argument("--var-steps", type=count("VAR steps", 1, MAX_STEPS), default=defaults.pretrain.steps,
                   help="VAR optimisation steps")
    p.add_argument("--finetune-steps", type=count("fine-tuning steps", 1, MAX_STEPS), default=defaults.finetune.steps,
                   help="class-token fine-tuning steps")
    p.set_defaults(run=run)


def run(args):
    out = output_dir(args.out)
    defaults = Recipe()
    recipe = Recipe(seed=args.seed, vae=replace(defaults.vae, steps=args.vae_steps),
                    pretrain=replace(defaults.pretrain, steps=args.var_steps),
                    finetune=replace(defaults.finetune, steps=args.finetune_steps))
    record = train_digits(out, recipe)
    print(f"trained in {record['total_wall_s']:.0f} s ({record['total_cpu_s']:.0f} s CPU); wrote the model to {out.resolve()}")
    print(f"use it with: --model {out / 'ar-ckpt-digits.pth'} --vae {out / 'vae-digits.pth'}")
