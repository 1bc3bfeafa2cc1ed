#!/usr/bin/env python3
"""Wire interoperability check: a standard protobuf implementation (Python `protobuf`) and pyzmq talk to Bonfire.

Driven by `bonfire-bench wire-interop`, which binds two sockets on 127.0.0.1 and starts this script:
  1. Receives every envelope the Swift side sends on --pull (one of each payload kind), checks the envelope header
     and payload-specific values (float32 little-endian bytes decode to the expected numbers), and echoes each
     message back re-serialized by Python on --push. Swift checks the echo equals what it sent.
  2. Sends messages built from scratch in Python (hello, a BoN group batch, metrics, shutdown) that Swift decodes and
     checks field by field.
Exit status 0 on success; 1 on a mismatch; 77 when a dependency is missing (the caller reports SKIPPED, not passed).

The schema is compiled at runtime from Proto/bonfire.proto: `protoc-c -o` (protobuf-c's compiler writes a standard
FileDescriptorSet) or, if protoc-c is missing, grpcio-tools' bundled protoc (`pip install grpcio-tools`).
Needs: pip install pyzmq protobuf
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile

SKIP = 77
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import zmq
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError as e:  # pragma: no cover
    print(f"wire_interop: SKIPPED: missing Python module ({e}); run: pip install pyzmq protobuf", flush=True)
    sys.exit(SKIP)


def load_schema():
    proto_dir = os.path.join(ROOT, "Proto")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bonfire.desc")
        if shutil.which("protoc-c"):
            cmd = ["protoc-c", f"--proto_path={proto_dir}", f"--descriptor_set_out={out}", "bonfire.proto"]
            subprocess.run(cmd, check=True)
        else:
            try:
                from grpc_tools import protoc
            except ImportError:
                print("wire_interop: SKIPPED: neither protoc-c nor grpcio-tools is available "
                      "(apt-get install protobuf-c-compiler, or pip install grpcio-tools)", flush=True)
                sys.exit(SKIP)
            rc = protoc.main(["protoc", f"--proto_path={proto_dir}", f"--descriptor_set_out={out}", "bonfire.proto"])
            if rc != 0:
                raise SystemExit(f"wire_interop: protoc failed ({rc})")
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fdp in fds.file:
        pool.Add(fdp)
    return lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"bonfire.v1.{name}"))


def floats(b):
    if len(b) % 4:
        raise AssertionError(f"{len(b)} bytes is not a whole number of float32")
    return list(struct.unpack(f"<{len(b) // 4}f", b))


def uint32s(b):
    if len(b) % 4:
        raise AssertionError(f"{len(b)} bytes is not a whole number of uint32")
    return list(struct.unpack(f"<{len(b) // 4}I", b))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pull", required=True, help="endpoint where Swift pushes (tcp://127.0.0.1:PORT)")
    ap.add_argument("--push", required=True, help="endpoint where Swift pulls")
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--count", type=int, required=True, help="messages Swift sends")
    ap.add_argument("--timeout-ms", type=int, default=10000)
    args = ap.parse_args()
    for ep in (args.pull, args.push):
        check(ep.startswith("tcp://127.0.0.1:"), f"only 127.0.0.1 endpoints are allowed, got {ep}")

    M = load_schema()
    Envelope = M("Envelope")
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVTIMEO, args.timeout_ms)
    pull.setsockopt(zmq.LINGER, 1000)
    pull.connect(args.pull)
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDTIMEO, args.timeout_ms)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect(args.push)

    kinds = []
    try:
        # 1. Decode what Swift sends, check it, echo Python's own serialization back.
        for i in range(args.count):
            frame = pull.recv()
            env = Envelope()
            env.ParseFromString(frame)
            check(env.protocol_version == 1, f"protocol_version {env.protocol_version}")
            check(env.run_id == args.run_id, f"run_id {env.run_id!r}")
            check(env.sequence == i + 1, f"sequence {env.sequence} at message {i}")
            kind = env.WhichOneof("payload")
            check(kind is not None, f"message {i} has no payload")
            kinds.append(kind)
            if kind == "parameters":
                p = env.parameters
                vals = floats(p.data)
                check(p.byte_length == len(p.data), "byte_length")
                check(vals == [k * 0.25 - 3 for k in range(len(vals))], "parameter floats differ")
            elif kind == "bon_groups":
                for g in env.bon_groups.groups:
                    for r in g.responses:
                        check(len(floats(r.token_logprobs)) == len(uint32s(r.tokens)), "logprobs per token")
                        check(all(x <= 0 for x in floats(r.token_logprobs)), "log-probs must be <= 0")
                check(uint32s(env.bon_groups.groups[0].responses[0].tokens) == [30, 31, 2], "token ids")
            elif kind == "episodes":
                e = env.episodes
                t, d = e.num_steps, e.observation_dim
                check(len(floats(e.observations)) == t * d and len(e.actions) == 4 * t and len(e.dones) == t,
                      "episode shapes")
                check(list(struct.unpack(f"<{t}i", e.actions)) == [1, 0, -1], "actions")
            elif kind == "metrics":
                check(env.metrics.values["loss/policy"] == 1.25, "metrics map")
            push.send(env.SerializeToString())

        # 2. Messages built from scratch in Python.
        def envelope(seq):
            e = Envelope()
            e.protocol_version = 1
            e.run_id = args.run_id
            e.sender_role = 4  # ROLE_TOOL
            e.sender_id = 7
            e.sequence = seq
            return e

        e = envelope(1)
        e.hello.role = 3
        e.hello.id = 9
        e.hello.host = "127.0.0.1"
        e.hello.pid = os.getpid()
        e.hello.capabilities.extend(["python", "interop"])
        push.send(e.SerializeToString())

        e = envelope(2)
        e.bon_groups.task = "math"
        g = e.bon_groups.groups.add()
        g.item_id = 31
        g.prompt_tokens = struct.pack("<4I", 1, 5, 6, 7)
        g.behaviour_version = 12
        g.temperature = 0.5
        for n in range(4):
            r = g.responses.add()
            r.tokens = struct.pack("<3I", 10 + n, 11, 2)
            r.token_logprobs = struct.pack("<3f", -0.5, -0.25, -0.125 * n)
            r.verifier_score = 0.1 * n
            r.reward = float(n == 2)
        push.send(e.SerializeToString())

        e = envelope(3)
        e.metrics.step = 5
        e.metrics.version = 12
        e.metrics.values["loss/policy"] = 0.75
        e.metrics.values["eval/bo4"] = 0.5
        push.send(e.SerializeToString())

        e = envelope(4)
        e.shutdown.reason = "python done"
        push.send(e.SerializeToString())
    except zmq.Again:
        print(f"wire_interop: FAILED: timed out after {args.timeout_ms} ms waiting for the Swift side "
              f"(received kinds so far: {kinds})", flush=True)
        return 1
    except Exception as err:  # a mismatch, or a message shaped unlike what the schema promises
        print(f"wire_interop: FAILED: {type(err).__name__}: {err}", flush=True)
        return 1
    finally:
        push.close()
        pull.close()
        ctx.term()
    print(f"wire_interop: python decoded {len(kinds)} Swift messages ({', '.join(kinds)}) and sent 4 of its own "
          f"(protobuf {__import__('google.protobuf').protobuf.__version__}, pyzmq {zmq.__version__})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
