#!/usr/bin/env python3
"""The disk's floor under a durable audit record: how long making one ~300-byte record durable
takes on this filesystem, by write strategy and by how often records come.

    python3 bench/fsync_floor.py [DIR] [--records N]

DIR (default: $TMPDIR or /tmp) should be on the filesystem the audit log lives on. Strategies:

  append            write(2) to a growing O_APPEND file, then fdatasync: what the audit writer
                    does today. On ext4 every append also changes the file size, which
                    fdatasync must commit through the journal.
  overwrite-zeroed  pwrite into space written with zeros beforehand, then fdatasync: the size
                    and the block map do not change (PostgreSQL's WAL segments).
  overwrite-falloc  pwrite into fallocate(2)d space (unwritten extents), then fdatasync.
  odirect-dsync     O_DIRECT|O_DSYNC rewrite of the record's 4 KiB block in zeroed space: one
                    syscall, no page cache.

Spacings: back to back (the writer saturated), 1 ms apart (about 1,000 req/s, one writer) and
50 ms apart (an idle gateway: a few share operations a minute). Prints a Markdown table of
p50 / p90 / p99 / max in microseconds, and per record the CPU time of the writing thread (user +
system, getrusage) and its voluntary context switches (each wait for the device or the journal
is one).

Then the wait a request would see: records arrive open loop every 1 ms (1,000 req/s on a fixed
schedule, as `oha --latency-correction` sends them) and one writer group-commits them, appending
whatever has arrived and fdatasyncing, with no hand-off between threads at all. A record's wait
is from its scheduled arrival to the end of the fdatasync that made it durable: a record that
arrives while a flush runs waits for the rest of that one and for its own. No gateway can make
a record durable on this disk sooner, so this is the floor under the audit wait at that rate
once the writer's own cost (the same run on /dev/shm, also printed) is taken off.
"""
import mmap
import os
import resource
import sys
import tempfile
import time

RECORD = b"x" * 299 + b"\n"
SEGMENT = 16 * 1024 * 1024
BLOCK = 4096
# Each spacing's run is capped at about this many seconds.
RUN_SECONDS = 10.0


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def zeroed(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    chunk = b"\0" * (1 << 20)
    for _ in range(SEGMENT // len(chunk)):
        os.write(fd, chunk)
    os.fsync(fd)
    return fd


class Append:
    name = "append"

    def open(self, path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.fsync(fd)
        return fd

    def write(self, fd, i):
        os.write(fd, RECORD)
        os.fdatasync(fd)


class OverwriteZeroed:
    name = "overwrite-zeroed"

    def open(self, path):
        return zeroed(path)

    def write(self, fd, i):
        os.pwrite(fd, RECORD, i * len(RECORD))
        os.fdatasync(fd)


class OverwriteFalloc(OverwriteZeroed):
    name = "overwrite-falloc"

    def open(self, path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.posix_fallocate(fd, 0, SEGMENT)
        os.fsync(fd)
        return fd


class DirectDsync:
    name = "odirect-dsync"

    def open(self, path):
        os.close(zeroed(path))
        self.buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
        self.offset = 0
        return os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_DSYNC)

    def write(self, fd, i):
        block, within = divmod(self.offset, BLOCK)
        if within + len(RECORD) > BLOCK:
            block, within = block + 1, 0
            self.buf.seek(0)
            self.buf.write(b"\0" * BLOCK)
        self.buf.seek(within)
        self.buf.write(RECORD)
        os.pwrite(fd, self.buf, block * BLOCK)
        self.offset = block * BLOCK + within + len(RECORD)


def measure(strategy, directory, records, spacing):
    path = os.path.join(directory, f"fsync-floor-{strategy.name}")
    fd = strategy.open(path)
    n = records if spacing == 0 else min(records, int(RUN_SECONDS / spacing))
    lat = []
    cpu = 0.0
    switches = 0
    try:
        for i in range(n):
            r0 = resource.getrusage(resource.RUSAGE_THREAD)
            t = time.perf_counter()
            strategy.write(fd, i)
            lat.append((time.perf_counter() - t) * 1e6)
            r1 = resource.getrusage(resource.RUSAGE_THREAD)
            cpu += (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
            switches += r1.ru_nvcsw - r0.ru_nvcsw
            if spacing:
                time.sleep(spacing)
    finally:
        os.close(fd)
        os.unlink(path)
    return n, lat, cpu * 1e6 / n, switches / n


def group_commit(directory, rate, seconds):
    """Open-loop arrivals at `rate` per second, one group-committing writer; returns the waits
    (arrival to durable) in microseconds, the records per flush and the writer's CPU time per
    record in microseconds (user + system, sleeping included)."""
    path = os.path.join(directory, "fsync-floor-group-commit")
    fd = Append().open(path)
    interval = 1.0 / rate
    total = int(rate * seconds)
    waits, flushes = [], 0
    start = time.perf_counter() + 0.01
    written = 0
    r0 = resource.getrusage(resource.RUSAGE_THREAD)
    try:
        while written < total:
            now = time.perf_counter()
            arrived = min(total, int((now - start) / interval) + 1) if now >= start else 0
            if arrived <= written:
                time.sleep(max(0.0, start + written * interval - now))
                continue
            # A decision record per arrival, and the outcome record of the one before.
            os.write(fd, RECORD * (2 * (arrived - written)))
            os.fdatasync(fd)
            done = time.perf_counter()
            waits.extend((done - (start + i * interval)) * 1e6 for i in range(written, arrived))
            written = arrived
            flushes += 1
    finally:
        os.close(fd)
        os.unlink(path)
    r1 = resource.getrusage(resource.RUSAGE_THREAD)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return waits, total / flushes, cpu * 1e6 / total


def main():
    args = sys.argv[1:]
    records = 2000
    if "--records" in args:
        i = args.index("--records")
        records = int(args[i + 1])
        del args[i : i + 2]
    directory = args[0] if args else tempfile.gettempdir()
    print(f"fdatasync floor in {directory}, {len(RECORD)}-byte records\n")
    print("| strategy | spacing | records | p50 µs | p90 µs | p99 µs | max µs | CPU µs/record | waits/record |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for spacing, label in [(0, "back to back"), (0.001, "1 ms"), (0.05, "50 ms (idle)")]:
        for strategy in (Append(), OverwriteZeroed(), OverwriteFalloc(), DirectDsync()):
            n, lat, cpu, waits = measure(strategy, directory, records, spacing)
            p = [percentile(lat, q) for q in (50, 90, 99)]
            print(
                f"| {strategy.name} | {label} | {n} | {p[0]:.0f} | {p[1]:.0f} | {p[2]:.0f} | {max(lat):.0f} | {cpu:.0f} | {waits:.1f} |",
                flush=True,
            )
    rate, seconds = 1000, RUN_SECONDS
    print(f"\nGroup commit, {rate} records/s open loop for {seconds:.0f} s, arrival to durable:\n")
    print("| where | records per flush | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | writer CPU µs/record |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    # The same writer on tmpfs, where fdatasync does nothing: what the writer itself (this
    # interpreter, its sleeps and wake-ups) costs; the difference is the disk's.
    places = [(directory, directory)]
    if os.path.isdir("/dev/shm"):
        places.append(("/dev/shm", "/dev/shm (no disk: the writer's own cost)"))
    for place, label in places:
        waits, per_flush, cpu = group_commit(place, rate, seconds)
        p = [percentile(waits, q) for q in (50, 90, 99, 99.9)]
        print(
            f"| {label} | {per_flush:.2f} | {p[0]:.0f} | {p[1]:.0f} | {p[2]:.0f} | {p[3]:.0f} | {max(waits):.0f} | {cpu:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
