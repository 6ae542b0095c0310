#!/usr/bin/env python3
"""A delaying TCP relay: emulated network latency for the loopback fleet.

    relay.py RTT_MS LISTEN_ADDR:PORT=TARGET_ADDR:PORT [...]

This machine's kernel has no netem, so latency is emulated in user space.
One process serves every host: for each LISTEN=TARGET pair it accepts on
LISTEN and opens a connection to TARGET (the host's sshd on its inner port).
Every chunk read from either side is held for RTT/2 before it is written to
the other side, so one request and its answer cost a full RTT, as on a real
network. Chunks of one direction keep their order: each direction has one
FIFO queue drained by one writer task, and a chunk is written no earlier
than its arrival time + RTT/2 (later arrivals have later deadlines).

Only latency is emulated, not bandwidth or loss. Started and stopped by
fleet.sh (`start DIR --rtt MS`), never on its own.
"""

import asyncio
import collections
import sys

CHUNK = 65536


async def pump(reader, writer, delay):
    """Copy reader to writer, each chunk held `delay` seconds, in order."""
    loop = asyncio.get_running_loop()
    queue = collections.deque()
    ready = asyncio.Event()

    async def deliver():
        while True:
            while not queue:
                ready.clear()
                await ready.wait()
            due, data = queue.popleft()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:  # the sender closed its side: pass the EOF on
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    async def deliver_quietly():
        try:
            await deliver()
        except (ConnectionError, OSError):
            pass  # the receiving side went away; the other pump notices too

    sender = asyncio.ensure_future(deliver_quietly())
    try:
        while True:
            data = await reader.read(CHUNK)
            queue.append((loop.time() + delay, data or None))
            ready.set()
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def relay(client_reader, client_writer, target, delay):
    host, port = target
    try:
        server_reader, server_writer = await asyncio.open_connection(host, port)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(
            pump(client_reader, server_writer, delay),
            pump(server_reader, client_writer, delay),
        )
    finally:
        client_writer.close()
        server_writer.close()


def address(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main(argv):
    if len(argv) < 2:
        sys.exit("usage: relay.py RTT_MS LISTEN_ADDR:PORT=TARGET_ADDR:PORT ...")
    delay = float(argv[0]) / 2000.0  # half the round trip each way, in seconds
    servers = []
    for pair in argv[1:]:
        listen, _, target = pair.partition("=")
        listen_host, listen_port = address(listen)
        to = address(target)
        servers.append(
            await asyncio.start_server(
                lambda r, w, to=to: relay(r, w, to, delay),
                listen_host,
                listen_port,
                backlog=512,
                reuse_address=True,
            )
        )
    print("relay: listening", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
