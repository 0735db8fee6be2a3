"""Fleet scenarios (issue 22): the Ansible rollout of contrib/ansible/ against two VM guests.

Registered into scenarios.py by `fleet.register(module)`. Each scenario boots two "fleet" guests
(tests/vm/fleet-guest.sh: the systemd guest plus openssh-server and python3) at once, each with
its SSH port forwarded from a free 127.0.0.1 port (QEMU user network, hostfwd) and a key made
for the run; one mock balena API serves both guests (guestfwd 10.0.2.100) and the controller
(127.0.0.1). The payload disk only installs the key, snapshots the guest's state and keeps the
guest running; everything else is done by ansible-playbook (the pinned venv of
contrib/ansible/setup-venv.sh) over real SSH. When a migrated guest's QEMU exits after stage 2's
reboot, the test bed tells the mock that the device is online (POST /__mock/devices).

  fleet-survey            phase 1 only: both dry runs, the fleet report lists both hosts with
                          board and disk, nothing changed on either guest
  fleet-rollout           both hosts migrate in two waves; both disks inspected; the play waits
                          until the mock lists each device online
  fleet-stop-on-failure   the second host's dry run fails (a corrupt image): the rollout stops
                          before any migration, the fleet report says which host and why, and
                          neither host is changed
  fleet-stop-on-migration-failure
                          the first wave's host migrates but never comes online: the play stops
                          after the timeout, the report says so, the second host is untouched
"""
import csv
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = "fleet"
HOSTNAME = "takeover-fleet"
HOSTS = ("fleet-a", "fleet-b")
ANSIBLE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "contrib", "ansible")
VENV = os.environ.get("ANSIBLE_VENV", os.path.join(ANSIBLE, ".venv"))
# What the play itself leaves on a host (its staging dir, Ansible's temp dir) is not a change
# the dry run made.
PLAY_PATHS = ("/var/lib/takeover-rollout", "/root/.ansible")
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
            "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]

GUEST_RUN = """
install -d -m 700 /root/.ssh
install -m 600 /payload/authorized_keys /root/.ssh/authorized_keys
facts
snap before
touch /run/payload-keep-running
say "fleet guest ready for SSH"
exit 0
"""

S = None  # the scenarios module (set by register)
_PREPARED: dict = {}


def sh_log(argv, log, **kw):
    with open(log, "ab") as f:
        return subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, **kw).returncode


def prepare(ctx):
    """The fleet guest and the controller's venv (both cached), once per run."""
    if "ok" in _PREPARED:
        return
    os.makedirs(os.path.join(S.OUT, "fleet"), exist_ok=True)
    log = os.path.join(S.OUT, "fleet", "prepare.log")
    t0 = time.time()
    if sh_log([os.path.join(HERE, "fleet-guest.sh")], log) != 0:
        raise S.Failed(f"building the fleet guest failed (see {log})")
    t1 = time.time()
    if sh_log([os.path.join(ANSIBLE, "setup-venv.sh"), VENV], log) != 0:
        raise S.Failed(f"creating the Ansible venv failed (see {log})")
    _PREPARED["ok"] = f"guest {t1 - t0:.0f} s, venv {time.time() - t1:.0f} s"


def cargo_version() -> str:
    for line in open(os.path.join(S.ROOT, "Cargo.toml")):
        if line.startswith("version"):
            return line.split('"')[1]
    raise S.Failed("no version in Cargo.toml")


def make_dist(d: str, binary: str) -> str:
    """A release directory as `make release` writes it, with the x86_64 binary under test."""
    os.makedirs(d, exist_ok=True)
    name = f"takeover-{cargo_version()}-x86_64-unknown-linux-musl"
    shutil.copy(binary, os.path.join(d, name))
    digest = hashlib.sha256(open(os.path.join(d, name), "rb").read()).hexdigest()
    with open(os.path.join(d, "SHA256SUMS"), "w") as f:
        f.write(f"{digest}  {name}\n")
    return name


def uuid_of(host: str) -> str:
    return hashlib.md5(f"takeover-test:{host}".encode()).hexdigest()


def api(port: int, method: str, path: str, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


class Fleet:
    """Two fleet guests, one mock API, one key, an inventory; `play()` runs the rollout."""

    def __init__(self, ctx, name: str, migrate: bool):
        prepare(ctx)
        self.ctx, self.name = ctx, name
        self.dir = os.path.join(S.OUT, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "id_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "takeover-fleet-test",
                        "-f", self.key], check=True)
        self.ports = {h: S.vm.free_port() for h in HOSTS}
        self.results: dict = {}
        self.ended: dict = {}
        self.threads = []
        self.migrate = migrate
        self.never_online: set = set()  # hosts the test bed does not set online after the reboot
        self.mock = None

    def start(self):
        mock_log = os.path.join(self.dir, "api-requests.jsonl")
        dt = S.CONFIG["deviceType"]
        self.mock_port = S.vm.free_port()
        argv = ["/usr/bin/python3", S.REAL_MOCK, "--port", str(self.mock_port), "--record", mock_log,
                "--max-seconds", "3600", "--api-key", S.CONFIG["apiKey"], "--device-type", dt,
                "--flasher", dt, "--versions", f"{dt}={S.MOCK_VERSIONS}"]
        for h in HOSTS:
            argv += ["--device", uuid_of(h)]
        self.mock = subprocess.Popen(argv, stdout=open(os.path.join(self.dir, "mock.log"), "wb"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        S.vm.wait_port(self.mock_port, self.mock)
        for h in HOSTS:
            p = S.payload(os.path.join(self.name, h), self.ctx.binary, GUEST_RUN,
                          {"authorized_keys": self.key + ".pub"})
            t = threading.Thread(target=self._run, args=(h, p), daemon=True)
            t.start()
            self.threads.append(t)
        deadline = time.time() + 600
        for h in HOSTS:
            while self.ssh(h, "test -e /run/payload-keep-running", check=False) != 0:
                if h in self.ended:
                    raise S.Failed(f"{h} ended ({self.results.get(h, {}).get('end')}) before SSH was up")
                if time.time() > deadline:
                    raise S.Failed(f"{h}: no SSH login within 600 s")
                time.sleep(3)
        self.ssh_up = time.time()

    def _run(self, host, payload_dir):
        timeout = 2400 if self.migrate else 1200
        try:
            res = S.vm.run_vm(GUEST, payload_dir, os.path.join(self.dir, host), timeout=timeout,
                              stream=self.ctx.stream, hostfwd=[(self.ports[host], 22)],
                              mock_port=self.mock_port)
        except Exception as e:  # noqa: BLE001 - reported by the scenario
            res = {"end": f"test bed error: {e}"}
        self.results[host] = res
        self.ended[host] = time.time()
        # A migrated guest reboots at the end of stage 2 (QEMU exits, -no-reboot): from now on
        # its balenaOS counts as online.
        if self.migrate and res.get("end") == "reboot" and host not in self.never_online:
            try:
                api(self.mock_port, "POST", "/__mock/devices", {"uuid": uuid_of(host), "is_online": True})
            except OSError:
                pass

    def ssh(self, host, command, check=True, capture=False):
        r = subprocess.run(["ssh", *SSH_OPTS, "-i", self.key, "-p", str(self.ports[host]),
                            "root@127.0.0.1", command], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            raise S.Failed(f"ssh {host} '{command}' exited {r.returncode}: {r.stderr.strip()[-300:]}")
        return r.stdout if capture else r.returncode

    def inventory(self, host_vars=None) -> str:
        img, _ = S.image("mbr", 64)
        cfg = os.path.join(self.dir, "config.json")
        with open(cfg, "w") as f:
            json.dump(S.CONFIG, f)
        os.chmod(cfg, 0o600)
        hosts = {}
        for h in HOSTS:
            hosts[h] = {"ansible_host": "127.0.0.1", "ansible_port": self.ports[h],
                        "takeover_uuid": uuid_of(h), **((host_vars or {}).get(h, {}))}
        inv = {"takeover_fleet": {"hosts": hosts, "vars": {
            "ansible_user": "root", "ansible_ssh_private_key_file": self.key,
            "ansible_ssh_common_args": " ".join(SSH_OPTS),
            "ansible_python_interpreter": "/usr/bin/python3",
            "takeover_dist_dir": os.path.join(self.dir, "dist"),
            "takeover_config_json": cfg, "takeover_image": img,
            "takeover_backup_cfg": "/srv/app/backup.yml",
            "takeover_api_url": f"http://127.0.0.1:{self.mock_port}",
            "takeover_report_dir": os.path.join(self.dir, "fleet-report"),
            "takeover_online_delay": 5, "takeover_online_timeout": 900,
        }}}
        make_dist(os.path.join(self.dir, "dist"), self.ctx.binary)
        path = os.path.join(self.dir, "inventory.json")
        with open(path, "w") as f:
            json.dump(inv, f, indent=1)
        return path

    def play(self, inventory, extra=None) -> tuple:
        """ansible-playbook rollout.yml; (exit status, output, seconds)."""
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ANSIBLE, "ansible.cfg"),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.dir, "ansible-tmp"),
                   BALENA_API_KEY=S.CONFIG["apiKey"])
        argv = [os.path.join(VENV, "bin", "ansible-playbook"), "-i", inventory,
                os.path.join(ANSIBLE, "rollout.yml")]
        if extra:
            argv += ["-e", json.dumps(extra)]
        t0 = time.time()
        r = subprocess.run(argv, cwd=ANSIBLE, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
        out = r.stdout + r.stderr
        with open(os.path.join(self.dir, "ansible.log"), "w") as f:
            f.write(out)
        for secret in (S.CONFIG["apiKey"], S.CONFIG["deviceApiKey"]):
            S.check(secret not in out, "an API key appears in ansible-playbook's output")
        return r.returncode, out, time.time() - t0

    def power_off(self, host):
        """Snapshot the guest's state again and power it off (ends its QEMU)."""
        self.ssh(host, "cd /payload && . ./lib.sh && snap after && sync")
        self.ssh(host, "systemctl --no-block poweroff", check=False)

    def end_unchanged(self):
        """Power both guests off and check that neither was changed (see unchanged())."""
        for h in HOSTS:
            self.power_off(h)
        self.wait(300)
        for h in HOSTS:
            S.vm_ok(self.results[h])
            unchanged(self, h)

    def wait(self, timeout=900):
        end = time.time() + timeout
        for t in self.threads:
            t.join(timeout=max(1, end - time.time()))
        S.check(all(h in self.results for h in HOSTS), "a guest did not end in time")

    def close(self):
        if self.mock:
            self.mock.terminate()
            try:
                self.mock.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.mock.kill()

    def report(self) -> list:
        d = os.path.join(self.dir, "fleet-report")
        S.check(os.path.isfile(os.path.join(d, "fleet.md")), "no fleet.md written")
        for dp, _, fns in os.walk(d):
            for fn in fns:
                data = open(os.path.join(dp, fn), "rb").read()
                for secret in (S.CONFIG["apiKey"], S.CONFIG["deviceApiKey"]):
                    S.check(secret.encode() not in data, f"an API key is in the fleet report's {fn}")
        with open(os.path.join(d, "fleet.csv"), newline="") as f:
            return list(csv.DictReader(f))


def play_made(snap_file: str, line: str) -> bool:
    """A snapshot line that only shows the play's own traces: its directories (and the mtime
    of their parents), the SSH session's runtime dir."""
    if any(p in line for p in PLAY_PATHS):
        return True
    if snap_file == "mounts":
        return line.startswith("/run/user/")
    if snap_file == "tree":
        path = line.split(" ", 1)[0]
        return any(p.startswith(path + "/") for p in PLAY_PATHS)
    return False


def unchanged(fl: Fleet, host: str) -> None:
    """Nothing but the play's own staging files changed in the guest (lib.sh's snapshots before
    SSH was used and after the play), and the disk's table and first MiB equal the base disk's."""
    res = fl.results[host]
    out = res["out"]
    diffs = []
    for f in ("mounts", "swaps", "tree", "digests", "vda_first_mib"):
        a = S.read(os.path.join(out, "snap-before", f))
        b = S.read(os.path.join(out, "snap-after", f))
        S.check(a is not None and b is not None, f"{host}: snapshot {f} missing")
        la = {ln for ln in a.splitlines() if not play_made(f, ln)}
        lb = {ln for ln in b.splitlines() if not play_made(f, ln)}
        if la != lb:
            diffs.append(f"{f}: {sorted(la ^ lb)[:6]}")
    S.check(not diffs, f"{host}: state changed: " + "; ".join(diffs))
    S.root_unchanged_on_disk(res, GUEST)


def tasks_in_order(out: str) -> list:
    """[(task name, host)] for every ok/changed/failed host line, in the order printed."""
    seq, task = [], ""
    for line in out.splitlines():
        if line.startswith("TASK ["):
            task = line[6:line.find("]")].split(" : ", 1)[-1]
        for tag in ("ok: [", "changed: [", "fatal: [", "failed: ["):
            if line.startswith(tag):
                seq.append((task, line[len(tag):].split("]", 1)[0].split(" ", 1)[0]))
    return seq


def survey(ctx):
    fl = Fleet(ctx, "fleet-survey", migrate=False)
    try:
        fl.start()
        rc, out, secs = fl.play(fl.inventory(), {"takeover_survey_only": True})
        S.check(rc == 0, f"ansible-playbook exited {rc} (see {fl.dir}/ansible.log)")
        S.check("Phase 2" not in out or "skipping: no hosts matched" in out,
                "the survey went on to phase 2")
        rows = fl.report()
        S.check([r["host"] for r in rows] == list(HOSTS), f"fleet report hosts {[r['host'] for r in rows]}")
        for r in rows:
            S.check(r["ready"] == "yes", f"{r['host']}: dry run did not go ahead: {r['error']} {r['failing_checks']}")
            S.check(r["target_disk"].startswith("/dev/vda"), f"{r['host']}: target disk {r['target_disk']!r}")
            S.check(r["board"] != "" and r["arch"] == "x86_64", f"{r['host']}: board {r['board']!r} arch {r['arch']!r}")
            S.check(r["binary"].endswith("-x86_64-unknown-linux-musl"), f"{r['host']}: binary {r['binary']}")
            S.check(r["migration"] == "not started", f"{r['host']}: migration {r['migration']!r}")
        for h in HOSTS:
            mode = fl.ssh(h, "stat -c %a /var/lib/takeover-rollout/config.json", capture=True).strip()
            S.check(mode == "600", f"{h}: config.json has mode {mode}")
        fl.end_unchanged()
    finally:
        fl.close()
    md = open(os.path.join(fl.dir, "fleet-report", "fleet.md")).read()
    print(md, end="", flush=True)
    return (f"play {secs:.0f} s, {len(rows)} hosts ready ({rows[0]['board']}, {rows[0]['target_disk']}); "
            f"nothing changed on either guest; {_PREPARED['ok']}")


def rollout(ctx):
    fl = Fleet(ctx, "fleet-rollout", migrate=True)
    _, man = S.image("mbr", 64)
    try:
        fl.start()
        rc, out, secs = fl.play(fl.inventory())
        S.check(rc == 0, f"ansible-playbook exited {rc} (see {fl.dir}/ansible.log)")
        fl.wait(600)
    finally:
        fl.close()
    seq = tasks_in_order(out)
    starts = [h for t, h in seq if t.startswith("Start takeover detached")]
    online = [h for t, h in seq if t.startswith("Wait until the balena API lists")]
    S.check(starts == list(HOSTS) and online == list(HOSTS), f"migrations {starts}, online {online}")
    # Two waves: the second host starts only after the first is online.
    i_online_a = seq.index(("Wait until the balena API lists the device online", HOSTS[0]))
    i_start_b = seq.index(("Start takeover detached (losing this SSH session later is expected)", HOSTS[1]))
    S.check(i_online_a < i_start_b, "the second wave started before the first host was online")
    S.check(fl.ended[HOSTS[0]] < fl.ended[HOSTS[1]], "the first wave's guest did not reboot first")
    rows = fl.report()
    details = []
    for h in HOSTS:
        res = fl.results[h]
        S.vm_ok(res, "reboot")
        got = S.assert_migrated(res, res["root_disk"], man, GUEST)
        with S.inspect_disk.Disk(res["root_disk"]) as d:
            cfg = json.loads(d.fat_cat(d.find("resin-boot"), "config.json") or b"{}")
        S.check(cfg.get("uuid") == uuid_of(h), f"{h}: resin-boot config.json uuid {cfg.get('uuid')!r}")
        details.append(f"{h} rebooted after {res['seconds']:.0f} s ({len(got['ssids'])} keyfiles)")
    S.check([r["migration"] for r in rows] == ["online", "online"], f"fleet report {[r['migration'] for r in rows]}")
    reqs = [json.loads(ln) for ln in open(os.path.join(fl.dir, "api-requests.jsonl"))]
    polls = [r for r in reqs if r["path"] == "/v6/device"]
    S.check(polls and all(r["auth_ok"] for r in polls), "the play's online checks lacked the API key")
    rollout_s = max(fl.ended.values()) - fl.ssh_up
    return (f"two waves, play {secs:.0f} s (SSH up to last reboot {rollout_s:.0f} s); {'; '.join(details)}; "
            f"{len(polls)} online checks; both disks verified and configured")


def stop_on_failure(ctx):
    fl = Fleet(ctx, "fleet-stop-on-failure", migrate=False)
    img, _ = S.image("mbr", 64)
    bad = os.path.join(fl.dir, "corrupt.img.gz")
    raw = bytearray(open(img, "rb").read())
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(64)
    with open(bad, "wb") as f:
        f.write(raw)
    try:
        fl.start()
        rc, out, secs = fl.play(fl.inventory({HOSTS[1]: {"takeover_image": bad}}))
        S.check(rc != 0, "ansible-playbook succeeded although a dry run failed")
        S.check("Start takeover detached" not in out, "a migration was started")
        rows = fl.report()
        a, b = rows
        S.check(a["ready"] == "yes" and b["ready"] == "no", f"ready: {a['ready']}, {b['ready']}")
        S.check(b["error"] or b["failing_checks"], f"{HOSTS[1]}: the report gives no reason")
        S.check(a["migration"] == "not started", f"{HOSTS[0]}: migration {a['migration']!r}")
        fl.end_unchanged()
    finally:
        fl.close()
    why = (b["error"] or b["failing_checks"])[:120]
    return f"rollout stopped before any migration (play {secs:.0f} s); {HOSTS[1]}: {why!r}; both guests unchanged"


def stop_on_migration_failure(ctx):
    """The first wave's host migrates but never comes online (the test bed does not tell the
    mock): the play gives up after takeover_online_timeout, the fleet report says so, and the
    second wave's host stays untouched."""
    fl = Fleet(ctx, "fleet-stop-on-migration-failure", migrate=True)
    fl.never_online.add(HOSTS[0])
    _, man = S.image("mbr", 64)
    try:
        fl.start()
        rc, out, secs = fl.play(fl.inventory({HOSTS[0]: {"takeover_online_timeout": 60}}))
        S.check(rc != 0, "ansible-playbook succeeded although the first host never came online")
        starts = [h for t, h in tasks_in_order(out) if t.startswith("Start takeover detached")]
        S.check(starts == [HOSTS[0]], f"migrations started on {starts} (expected only {HOSTS[0]})")
        rows = fl.report()
        a, b = rows
        S.check(a["migration"] == "failed" and "not online within 60 s" in a["migration_detail"],
                f"{HOSTS[0]}: {a['migration']!r} {a['migration_detail']!r}")
        S.check(b["ready"] == "yes" and b["migration"] == "not started", f"{HOSTS[1]}: {b['migration']!r}")
        fl.threads[0].join(timeout=600)  # the first host's guest ends with stage 2's reboot
        S.check(HOSTS[0] in fl.results, f"{HOSTS[0]} did not reboot")
        res = fl.results[HOSTS[0]]
        S.vm_ok(res, "reboot")
        S.assert_migrated(res, res["root_disk"], man, GUEST)
        fl.power_off(HOSTS[1])
        fl.wait(300)
        S.vm_ok(fl.results[HOSTS[1]])
        unchanged(fl, HOSTS[1])
    finally:
        fl.close()
    return (f"{HOSTS[0]} migrated but not online in 60 s: rollout stopped (play {secs:.0f} s), "
            f"report: {a['migration_detail']!r}; {HOSTS[1]} untouched")


def register(mod) -> None:
    """Adds the fleet scenarios to scenarios.py (mod: that module)."""
    global S
    S = mod
    S.HOSTNAMES.setdefault(GUEST, HOSTNAME)
    S.WIFI.setdefault(GUEST, S.WIFI["systemd"])
    S.scenario("fleet-survey")(survey)
    S.scenario("fleet-rollout", needs="stage2")(rollout)
    S.scenario("fleet-stop-on-failure")(stop_on_failure)
    S.scenario("fleet-stop-on-migration-failure", needs="stage2")(stop_on_migration_failure)
