"""torch backend: eager against --compile, in fp32 and bf16, interleaved rounds (digits model, batch 8).

    OMP_NUM_THREADS=1 python benchmarks/compile_gain.py > benchmarks/results/compile-digits.md
"""
import time, torch, statistics
from hieramp import Generator, AmpConfig, resolve_model
from hieramp.model.amp_config import default_amp_layers
torch.set_num_threads(1)
m = resolve_model("default"); amp = AmpConfig(layers=default_amp_layers(m.cfg.depth))
arms = {}
for prec in ("fp32", "bf16"):
    for comp in (False, True):
        arms[f"{prec}{'-compile' if comp else ''}"] = Generator(m, precision=prec, compile=comp)
labels = list(range(8))
t = {k: [] for k in arms}
for rnd in range(-1, 3):
    for k, g in arms.items():
        s = time.perf_counter(); g.run(labels, seed=rnd + 1, amp=amp); dt = (time.perf_counter() - s) / 8
        if rnd >= 0: t[k].append(dt)
        else: print("warmup", k, round(dt, 3), flush=True)
print("1-minute load:", open("/proc/loadavg").read().split()[0])
for k, v in t.items(): print(k, "median s/img", round(statistics.median(v), 4), [round(x, 4) for x in v])
