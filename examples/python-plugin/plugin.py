"""zoo-plugin-pyecho: a zoo model plugin written in Python.

It speaks zoo's plugin protocol (sdk/proto/zoo_plugin_v1.proto, documented
in docs/plugins.md) with nothing but Debian's python3-grpcio and
python3-protobuf: zoo_plugin_v1_pb2.py is generated from the same .proto by
`make proto-python` (protoc --python_out), and the gRPC service is
registered by hand below, so grpc_tools is not needed.

Its model PyEcho classifies the samples "sample0", "sample1", ... by the
parity of their index: enough to be listed, tested and inferred by zoo.
Its model PyParity learns the same thing: it trains (one weight and a bias
of a logistic regression), saves and loads its parameters, resumes an
interrupted epoch at its exact step, tests and infers. Every handler logs a
Python exception's traceback (shown at zoo's --log-level debug) and answers
INTERNAL with its last line.
"""

import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import zoo_plugin_v1_pb2 as pb  # noqa: E402

# go-plugin's handshake: zoo checks the cookie's value and the app protocol
# version (sdk.Handshake, sdk.ProtocolVersion).
MAGIC_COOKIE_KEY = "ZOO_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "7f1c2a9e-zoo-model-plugin"
CORE_PROTOCOL_VERSION = 1  # go-plugin's own
APP_PROTOCOL_VERSION = 1   # sdk.ProtocolVersion
PROTOCOL_MINOR = 2         # sdk.ProtocolMinor this plugin was written for
MAX_MESSAGE_BYTES = 256 << 20  # sdk.MaxMessageBytes

LABELS = ["even", "odd"]


def log(level, msg):
    """Logs go to stderr as hclog JSON; zoo shows them under its --log-level."""
    sys.stderr.write(json.dumps({"@level": level, "@message": msg, "@module": "pyecho"}) + "\n")
    sys.stderr.flush()


def model_info():
    return pb.ModelInfo(
        name="PyEcho",
        version="0.1.0",
        description="a model served by a plugin written in Python",
        tasks=["test", "infer"],
        config_keys=[
            pb.ConfigKey(section="INFER", name="samples", type="int", default_json="3",
                         help="how many samples to predict"),
            pb.ConfigKey(section="TEST", name="samples", type="int", default_json="4"),
        ],
        labels=LABELS,
        default_config_json=json.dumps({"INFER": {"samples": 2}}).encode(),
    )


def parity_info():
    return pb.ModelInfo(
        name="PyParity",
        version="0.1.0",
        description="learns the parity of a sample's index (a Python example that trains)",
        tasks=["train", "test", "infer"],
        config_keys=[
            pb.ConfigKey(section="TRAIN", name="epoch", type="int", default_json="3", help="epochs (--epoch)"),
            pb.ConfigKey(section="TRAIN", name="batch_size", type="int", default_json="2", help="samples per step (--batch_size)"),
            pb.ConfigKey(section="TRAIN", name="learning_rate", type="float", default_json="0.5", help="step size (--learning_rate)"),
            pb.ConfigKey(section="TRAIN", name="samples", type="int", default_json="6", help="samples per epoch"),
            pb.ConfigKey(section="TRAIN", name="fail_at", type="int", default_json="-1",
                         help="raise an exception at this step: how a plugin's failure is reported"),
            pb.ConfigKey(section="TEST", name="samples", type="int", default_json="4"),
            pb.ConfigKey(section="INFER", name="samples", type="int", default_json="2"),
        ],
        labels=LABELS,
    )


class PluginError(Exception):
    """A failure with a gRPC code: handlers raise it, guard answers it."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


def guard(fn):
    """Answers PluginError with its code and any other exception with
    INTERNAL and its last line, logging the traceback at debug level (zoo
    shows it with --log-level debug)."""
    def answer(e, ctx):
        if isinstance(e, PluginError):
            ctx.abort(e.code, str(e))
        log("debug", "%s failed:\n%s" % (fn.__name__, traceback.format_exc()))
        ctx.abort(grpc.StatusCode.INTERNAL, "%s: %s" % (type(e).__name__, e))

    def unary(req, ctx):
        try:
            return fn(req, ctx)
        except Exception as e:  # noqa: BLE001 - every failure is answered
            answer(e, ctx)

    def stream(req, ctx):
        try:
            yield from fn(req, ctx)
        except Exception as e:  # noqa: BLE001
            answer(e, ctx)
    return stream if fn.__name__ == "Run" else unary


class ParitySession:
    """p(odd) = sigmoid(w*x + b), x = +1 for an odd index, -1 for even."""

    def __init__(self, mode, cfg):
        self.mode, self.cfg = mode, cfg
        self.w = self.b = 0.0
        # A session's calls run one at a time: the host calls Save as soon
        # as it cancels Run, and Save must see whole steps.
        self.lock = threading.Lock()
        self.position = None  # (epoch, steps done) of the last train pass
        self.recent = []      # its last Step events, for SaveResponse

    def p_odd(self, i):
        return 1 / (1 + math.exp(-(self.w * (1 if i % 2 else -1) + self.b)))

    def run(self, req, ctx):
        section = {"train": "TRAIN", "valid": "TRAIN", "test": "TEST", "infer": "INFER"}[req.phase]
        n = int(self.cfg[section]["samples"])
        bs = int(self.cfg["TRAIN"]["batch_size"]) if section == "TRAIN" else 1
        steps = (n + bs - 1) // bs
        yield pb.Event(start=pb.Start(steps=steps, samples=n))
        # A resumed epoch skips its first start_step batches unread; the
        # order is fixed, so it sees the batches a whole epoch would.
        for step in range(req.start_step, steps):
            if not ctx.is_active():  # the host cancelled: stop between steps
                return
            with self.lock:
                batch = range(step * bs, min((step + 1) * bs, n))
                if req.phase == "infer":
                    events = []
                    for i in batch:
                        p = self.p_odd(i)
                        # Probabilities over the labels, summing to 1.
                        events.append(pb.Event(prediction=pb.Prediction(
                            id="sample%d" % i, label=-1, scores=pb.Tensor(shape=[2], data=[1 - p, p]))))
                else:
                    if req.phase == "train" and step == int(self.cfg["TRAIN"]["fail_at"]):
                        raise RuntimeError("TRAIN.fail_at: failing at step %d on purpose" % step)
                    loss = top1 = gw = gb = 0.0
                    for i in batch:
                        p, y = self.p_odd(i), i % 2
                        loss -= math.log(p) if y else math.log(1 - p)
                        top1 += (p > 0.5) == bool(y)
                        gw += (p - y) * (1 if y else -1)
                        gb += p - y
                    k, lr = len(batch), float(self.cfg["TRAIN"]["learning_rate"])
                    if req.phase == "train":
                        self.w -= lr * gw / k
                        self.b -= lr * gb / k
                    # Fractions; top5 is 1 with fewer than 5 classes.
                    ev = pb.Step(iter=step, samples=k, metrics={"loss": loss / k, "top1": top1 / k, "top5": 1.0, "lr": lr})
                    if req.phase == "train":
                        self.position = (req.epoch, step + 1)
                        self.recent = (self.recent + [ev])[-64:]
                    events = [pb.Event(step=ev)]
            yield from events

    def save(self, d):
        with self.lock:
            with open(os.path.join(d, "pyparity.json"), "w") as f:
                json.dump({"w": self.w, "b": self.b}, f)
            if self.position is None:
                return pb.SaveResponse()
            return pb.SaveResponse(has_train_position=True, train_epoch=self.position[0],
                                   train_steps=self.position[1], recent_steps=self.recent)

    def load(self, d):
        path = os.path.join(d, "pyparity.json")
        try:
            with open(path) as f:
                p = json.load(f)
        except OSError as e:
            raise PluginError(grpc.StatusCode.NOT_FOUND, "weights %s: %s" % (d, e.strerror))
        with self.lock:
            self.w, self.b = float(p["w"]), float(p["b"])


class Plugin:
    """The zoo.plugin.v1.Plugin service."""

    def __init__(self):
        self.sessions = {}
        self.next = 0

    def Describe(self, req, ctx):
        return pb.DescribeResponse(protocol_minor=PROTOCOL_MINOR, models=[model_info(), parity_info()])

    def Open(self, req, ctx):
        if req.model == "PyParity":
            # config_json holds every declared key, merged over the defaults
            # and type-checked by the host.
            s = ParitySession(req.mode, json.loads(req.config_json))
            # Weights arrive here: --pretrain for train, --weights (or the
            # newest checkpoint) for test and infer; --resume comes as Load.
            for d in (req.weights.get("pretrain"), req.weights.get("weights")):
                if d:
                    s.load(d)
            self.next += 1
            sid = str(self.next)
            self.sessions[sid] = s
            return pb.OpenResponse(session=sid, notes=["PyParity: w=%.4f b=%.4f" % (s.w, s.b)])
        if req.model != "PyEcho":
            raise PluginError(grpc.StatusCode.NOT_FOUND, "this plugin serves PyEcho and PyParity, not %r" % req.model)
        cfg = json.loads(req.config_json or b"{}")
        section = req.mode.upper()
        samples = int(cfg.get(section, {}).get("samples", 3))
        if samples < 1:
            # A user's mistake: INVALID_ARGUMENT with one line naming the key.
            raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "%s.samples %d: must be at least 1" % (section, samples))
        self.next += 1
        sid = str(self.next)
        self.sessions[sid] = samples
        return pb.OpenResponse(session=sid, notes=["PyEcho in Python %d.%d, %d samples" % (
            sys.version_info[0], sys.version_info[1], samples)])

    def Run(self, req, ctx):
        samples = self.sessions.get(req.session)
        if samples is None:
            raise PluginError(grpc.StatusCode.NOT_FOUND, "no session %r" % req.session)
        if isinstance(samples, ParitySession):
            yield from samples.run(req, ctx)
            return
        yield pb.Event(start=pb.Start(steps=samples, samples=samples))
        for i in range(samples):
            if not ctx.is_active():  # the host cancelled: stop between steps
                return
            scores = [0.8, 0.2] if i % 2 == 0 else [0.2, 0.8]
            if req.phase == "infer":
                yield pb.Event(prediction=pb.Prediction(
                    id="sample%d" % i, label=-1, scores=pb.Tensor(shape=[2], data=scores)))
            elif req.phase == "test":
                yield pb.Event(step=pb.Step(iter=i, samples=1, metrics={"loss": 0.2, "top1": 1.0, "top5": 1.0}))
            else:
                raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "PyEcho cannot run phase %r" % req.phase)

    def Infer(self, req, ctx):
        raise PluginError(grpc.StatusCode.UNIMPLEMENTED, "PyEcho takes no tensors from the host")

    def Save(self, req, ctx):
        s = self.sessions.get(req.session)
        if isinstance(s, ParitySession):
            return s.save(req.dir)
        with open(os.path.join(req.dir, "pyecho.json"), "w") as f:
            json.dump({"samples": self.sessions.get(req.session, 0)}, f)
        return pb.SaveResponse()

    def Load(self, req, ctx):
        s = self.sessions.get(req.session)
        if isinstance(s, ParitySession):
            s.load(req.dir)
            return pb.LoadResponse(loaded=2)
        return pb.LoadResponse(loaded=0, ignored=len(os.listdir(req.dir)))

    def Close(self, req, ctx):
        self.sessions.pop(req.session, None)
        return pb.CloseResponse()


def plugin_handler(impl):
    """Registers the service by hand, as grpc_tools' _pb2_grpc would."""
    def unary(fn, req_type, resp_type):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req_type.FromString, response_serializer=resp_type.SerializeToString)

    return grpc.method_handlers_generic_handler("zoo.plugin.v1.Plugin", {
        "Describe": unary(guard(impl.Describe), pb.DescribeRequest, pb.DescribeResponse),
        "Open": unary(guard(impl.Open), pb.OpenRequest, pb.OpenResponse),
        "Run": grpc.unary_stream_rpc_method_handler(
            guard(impl.Run), request_deserializer=pb.RunRequest.FromString, response_serializer=pb.Event.SerializeToString),
        "Infer": unary(guard(impl.Infer), pb.InferRequest, pb.InferResponse),
        "Save": unary(guard(impl.Save), pb.SaveRequest, pb.SaveResponse),
        "Load": unary(guard(impl.Load), pb.LoadRequest, pb.LoadResponse),
        "Close": unary(guard(impl.Close), pb.CloseRequest, pb.CloseResponse),
    })


def go_plugin_handlers(server, stop):
    """The services go-plugin's host side expects beside zoo's.

    grpc.health.v1.Health/Check for the service "plugin" must answer SERVING;
    plugin.GRPCController/Shutdown lets the host stop the plugin gracefully.
    Both messages are tiny, so they are encoded by hand: HealthCheckResponse
    {status: SERVING} is field 1 = 1 (bytes 08 01) and Empty is no bytes.
    """
    raw = dict(request_deserializer=None, response_serializer=None)
    health = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"\x08\x01", **raw),
    })

    def shutdown(req, ctx):
        stop()
        return b""

    controller = grpc.method_handlers_generic_handler("plugin.GRPCController", {
        "Shutdown": grpc.unary_unary_rpc_method_handler(shutdown, **raw),
    })
    return [health, controller]


def main():
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write("This binary is a plugin. These are not meant to be executed directly.\n"
                         "Please execute the program that consumes these plugins, which will\n"
                         "load any plugins automatically\n")
        sys.exit(1)
    # The host owns the signals: a Ctrl-C, `timeout`'s or a scheduler's
    # SIGTERM/SIGHUP may reach every process of the job, and the host then
    # saves through this plugin before closing it (docs/plugins.md,
    # "Signals and process lifetime").
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    host = os.getppid()
    opts = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Without this gRPC binds with SO_REUSEPORT, and a port another
            # process listens on looks free.
            ("grpc.so_reuseport", 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=opts)
    done = []
    server.add_generic_rpc_handlers([plugin_handler(Plugin())] +
                                    go_plugin_handlers(server, lambda: done.append(True)))
    # Listen where the host allows: PLUGIN_MIN_PORT..PLUGIN_MAX_PORT if set.
    lo, hi = int(os.environ.get("PLUGIN_MIN_PORT", "0")), int(os.environ.get("PLUGIN_MAX_PORT", "0"))
    port = 0
    for p in (range(lo, hi + 1) if lo and hi else [0]):
        try:
            port = server.add_insecure_port("127.0.0.1:%d" % p)
        except RuntimeError:
            port = 0
        if port:
            break
    if not port:
        log("error", "no free port in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT")
        sys.exit(1)
    server.start()
    # The handshake: the only line a plugin ever writes to stdout.
    print("%d|%d|tcp|127.0.0.1:%d|grpc" % (CORE_PROTOCOL_VERSION, APP_PROTOCOL_VERSION, port), flush=True)
    log("debug", "serving on port %d" % port)
    # Never outlive the host: when it dies this process is re-parented.
    while not done and os.getppid() == host:
        time.sleep(0.05)
    if not done:
        log("error", "host (pid %d) is gone; exiting" % host)
    server.stop(0.5)


if __name__ == "__main__":
    main()
