#!/usr/bin/env python3
"""Small load clients for bench/run.sh (standard library only).

  clients.py idle HOST PORT REQUEST_FILE N READY_FILE
      Opens N keep-alive connections, sends the raw request in REQUEST_FILE once on each,
      reads the answer, then keeps every connection open (idle) until SIGTERM or 120 s.
      Writes "<ok> <failed> <statuses>" to READY_FILE once all N have answered.

  clients.py once HOST PORT REQUEST_FILE
      Sends the request once; prints the status line, then the body.

  clients.py rate HOST PORT REQUEST_FILE RATE SECONDS CONNS
      Open-loop fixed-rate load: request i is due at t0 + i/RATE and goes out on any idle
      connection of a pool of CONNS keep-alive connections. Prints one JSON line with the
      achieved rate and latency percentiles, measured from the moment the request was due
      (so a late answer delays nothing and is still counted: no coordinated omission) and
      from the moment it was written, plus how late the client itself was in sending.
"""

import asyncio
import json
import signal
import sys
import time


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                break
        return status, body
    body = await reader.readexactly(length or 0)
    return status, body


async def idle(host, port, request, n, ready_file):
    conns = []
    statuses = {}
    failed = 0
    sem = asyncio.Semaphore(64)

    async def one():
        nonlocal failed
        async with sem:
            try:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                await writer.drain()
                status, _ = await read_response(reader)
                statuses[status] = statuses.get(status, 0) + 1
                conns.append((reader, writer))
            except Exception as e:  # noqa: BLE001
                failed += 1
                print(f"idle: connection failed: {e!r}", file=sys.stderr)

    await asyncio.gather(*(one() for _ in range(n)))
    ok = statuses.get(200, 0)
    with open(ready_file + ".tmp", "w") as f:
        f.write(f"{ok} {failed} {json.dumps(statuses)}\n")
    import os

    os.rename(ready_file + ".tmp", ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), 120)
    except asyncio.TimeoutError:
        pass
    for _, w in conns:
        w.close()


async def once(host, port, request):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    status, body = await read_response(reader)
    writer.close()
    print(status)
    print(body.decode(errors="replace"))


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


async def rate(host, port, request, rps, seconds, nconns):
    pool = asyncio.Queue()
    for _ in range(nconns):
        pool.put_nowait(await asyncio.open_connection(host, port))
    total = int(rps * seconds)
    from_due = []
    from_sent = []
    late = []
    errors = {}
    inflight = set()

    async def one(due):
        conn = await pool.get()
        reader, writer = conn
        sent = time.perf_counter()
        late.append(sent - due)
        try:
            writer.write(request)
            status, _ = await read_response(reader)
            end = time.perf_counter()
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
            from_due.append(end - due)
            from_sent.append(end - sent)
            pool.put_nowait(conn)
        except Exception as e:  # noqa: BLE001
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            writer.close()
            pool.put_nowait(await asyncio.open_connection(host, port))

    t0 = time.perf_counter() + 0.05
    for i in range(total):
        due = t0 + i / rps
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    if inflight:
        await asyncio.gather(*inflight)
    elapsed = time.perf_counter() - t0
    from_due.sort()
    from_sent.sort()
    late.sort()
    us = lambda v: round(v * 1e6, 1)  # noqa: E731
    print(
        json.dumps(
            {
                "requests": len(from_due),
                "errors": errors,
                "rate": round(len(from_due) / elapsed, 1),
                "p50_us": us(pct(from_due, 50)),
                "p99_us": us(pct(from_due, 99)),
                "p999_us": us(pct(from_due, 99.9)),
                "max_us": us(from_due[-1]) if from_due else None,
                "sent_p50_us": us(pct(from_sent, 50)),
                "sent_p99_us": us(pct(from_sent, 99)),
                "sent_p999_us": us(pct(from_sent, 99.9)),
                "late_p50_us": us(pct(late, 50)),
                "late_p99_us": us(pct(late, 99)),
            }
        )
    )
    for _, w in [pool.get_nowait() for _ in range(pool.qsize())]:
        w.close()


def main():
    mode, host, port, request_file = sys.argv[1:5]
    with open(request_file, "rb") as f:
        request = f.read()
    port = int(port)
    if mode == "once":
        asyncio.run(once(host, port, request))
    elif mode == "idle":
        asyncio.run(idle(host, port, request, int(sys.argv[5]), sys.argv[6]))
    elif mode == "rate":
        asyncio.run(
            rate(host, port, request, float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]))
        )
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
