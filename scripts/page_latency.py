"""Latency and throughput of the page with 1, 2 and 4 concurrent clients (gradio_client).

    python -m scripts.page_latency [--clients 1 2 4] [--runs 3] [--steps 25]

Launches `app.build_demo` on the embedded generator at 127.0.0.1 in this process; each
client runs `--runs` inpainting solves of 4 x `--steps` steps one after another. Prints,
per client count, the mean time from submit to result and the runs finished per second.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    import app
    from gradio_client import Client, handle_file
    from ilo_core.checkpoints import load_generator

    demo = app.build_demo(load_generator())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    face = str(ROOT / "assets" / "faces" / "astronaut_face.png")
    layer = np.zeros((256, 256, 4), dtype=np.uint8)
    layer[150:200, 60:200] = (255, 0, 255, 255)
    Image.fromarray(layer, "RGBA").save("/tmp/page_latency_layer.png")
    value = {"background": handle_file(face), "layers": [handle_file("/tmp/page_latency_layer.png")],
             "composite": handle_file(face)}
    names = Client(url, verbose=False).view_api(return_format="dict")["named_endpoints"]["/run"]["parameters"]
    names = [p["parameter_name"] for p in names]
    steps = [n for n in names if n.startswith("steps_layer_")] or ["param_8", "param_9", "param_10", "param_11"]
    first = {names[0]: value, names[1]: "Inpainting (paint the region)"} | {n: args.steps for n in steps}
    for count in args.clients:
        latencies: list[float] = []
        lock = threading.Lock()

        def work() -> None:
            client = Client(url, verbose=False)
            for _ in range(args.runs):
                t0 = time.perf_counter()
                client.predict(**first, api_name="/run")
                with lock:
                    latencies.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=work) for _ in range(count)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        print(f"{count} client(s): {len(latencies)} runs, mean latency {np.mean(latencies):.2f} s, "
              f"{len(latencies) / wall:.3f} runs/s", flush=True)
    demo.close()


if __name__ == "__main__":
    main()
