"""Times training steps of an autoarch PyTorch export, on the same shapes as
`cargo run --example step_time` (see bench/compare.sh).

usage: step_torch.py MODULE.py TASK BATCH STEPS [cpu|cuda]
Prints one JSON object: {"task", "batch", "params", "times_ms": [...]} after 3 warm-up steps.
"""
import importlib.util
import json
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = {
    # task: (input shape without batch, input is ids, vocab or classes, per-position targets)
    "mqar": ((64,), True, 256, True),
    "charlm": ((128,), True, 128, True),
    "digits": ((1, 8, 8), False, 10, False),
    "fashion": ((1, 28, 28), False, 10, False),
}


def main():
    path, task, batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    device = sys.argv[5] if len(sys.argv) > 5 else "cpu"
    if device == "cpu":
        torch.set_num_threads(2)
    spec = importlib.util.spec_from_file_location("exported", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.Model().to(device)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    shape, ids, classes, per_position = SHAPES[task]
    times = []
    for i in range(steps + 3):
        if ids:
            x = torch.randint(0, classes, (batch, *shape), device=device)
        else:
            x = torch.rand((batch, *shape), device=device)
        y = torch.randint(0, classes, (batch, *shape) if per_position else (batch,), device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, classes), y.reshape(-1), ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = loss.item()  # autoarch reads the loss back every step too
        if device == "cuda":
            torch.cuda.synchronize()
        ms = (time.perf_counter() - start) * 1e3
        if i >= 3:
            times.append(ms)
    print(json.dumps({"task": task, "batch": batch, "params": params, "times_ms": times}))


if __name__ == "__main__":
    main()
