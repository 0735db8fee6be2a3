"""Network migration scenarios (issue 19), registered into scenarios.py by `register(module)`.

migrate-ifupdown-static: the sysvinit guest's eth0 is switched at payload time from DHCP to an
ifupdown static stanza with the address QEMU's user network gave it (10.0.2.15/24, gateway
10.0.2.2, DNS 10.0.2.3, plus a search domain and a metric), brought up again with ifup, then
migrated. On the host, resin-boot must hold an ethernet keyfile with the same address, gateway,
DNS, search domain and metric, and the wifi networks of wpa_supplicant.conf.

migrate-netplan-static-wifi: the systemd guest (NetworkManager running) gets Debian's netplan.io
package (netplan.io, libnetplan0, libyaml-0-2 from the payload disk; fetched on the host with
`apt-get download` into $VM_CACHE/debs-netplan once) and /etc/netplan/60-net.yaml with eth0
static and a wifi with a password; netplan's generator writes its NetworkManager profiles to
/run/NetworkManager/system-connections. Expected: the netplan eth0 profile wins over
NetworkManager's DHCP profile of the same interface (netplan ranks first when the daemon it
renders for runs), the generated netplan-* profiles are reported as ignored (read from the YAML
instead), the wifi from netplan lands with its PSK.
"""

import glob
import os
import subprocess

import re

IFUPDOWN_PRE = r"""
say "reconfiguring eth0: ifupdown static"
ifdown eth0 || true
cat >/etc/network/interfaces <<'IF'
# interfaces(5) file used by ifup(8) and ifdown(8)
auto lo
iface lo inet loopback

allow-hotplug eth0
auto eth0
iface eth0 inet static
    address 10.0.2.15
    netmask 255.255.255.0
    gateway 10.0.2.2
    dns-nameservers 10.0.2.3
    dns-search vm.example
    metric 50
IF
ifup eth0
ip -4 addr show eth0 | tee "$OUT/eth0-addr"
ip -4 route | tee "$OUT/routes"
cat /run/network/ifstate >"$OUT/ifstate" 2>/dev/null || true
"""

NETPLAN_PRE = r"""
say "installing netplan.io from the payload disk"
dpkg --force-depends -i /payload/debs/*.deb >"$OUT/dpkg.log" 2>&1
echo "dpkg rc $?"
mkdir -p /etc/netplan
cat >/etc/netplan/60-net.yaml <<'NP'
network:
  version: 2
  renderer: NetworkManager
  ethernets:
    eth0:
      dhcp4: false
      addresses: [10.0.2.15/24]
      routes:
        - to: default
          via: 10.0.2.2
      nameservers:
        addresses: [10.0.2.3]
        search: [np.example]
  wifis:
    wlan0:
      dhcp4: true
      access-points:
        "Netplan Yard":
          password: "netplan-yard-pass-1"
NP
chmod 600 /etc/netplan/60-net.yaml
/usr/libexec/netplan/generate >"$OUT/generate.log" 2>&1
echo "netplan generate rc $?"
ls -1 /run/NetworkManager/system-connections >"$OUT/netplan-generated" 2>/dev/null || true
"""


def netplan_debs(m) -> str:
    """The netplan.io .debs (cached in $VM_CACHE/debs-netplan, downloaded once with apt-get)."""
    d = os.path.join(m.vm.CACHE, "debs-netplan")
    os.makedirs(d, exist_ok=True)
    want = ("netplan.io", "libnetplan0", "libyaml-0-2")
    have = lambda: all(glob.glob(os.path.join(d, f"{w}_*.deb")) for w in want)  # noqa: E731
    if not have():
        subprocess.run(["apt-get", "download", *want], cwd=d, capture_output=True, timeout=300)
    if not have():
        raise m.Skipped(f"the netplan.io .debs are not in {d} and apt-get download failed")
    return d


def keyfiles(inspect_disk, disk_path) -> dict:
    """resin-boot/system-connections/* as {name: text}."""
    out = {}
    with inspect_disk.Disk(disk_path) as d:
        boot = d.find("resin-boot")
        for f in d.fat_tree(boot):
            if f.startswith("system-connections/"):
                out[f.split("/", 1)[1]] = (d.fat_cat(boot, f) or b"").decode("utf-8", "replace")
    return out


def section(text: str, name: str) -> dict:
    """key=value pairs of one [section] of a keyfile."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            cur = m.group(1)
        elif cur == name and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def register(m) -> None:
    check = m.check

    def run(ctx, name, flavour, pre, debs=None):
        img, man = m.image("mbr", 64)
        run_sh = pre + m.MIGRATE_RUN.replace("{args}", "-i /payload/image.img.gz").replace("{env}", "")
        files = {"image.img.gz": img}
        p = m.payload(name, ctx.binary, run_sh, files)
        if debs:
            os.makedirs(os.path.join(p, "debs"))
            for f in glob.glob(os.path.join(debs, "*.deb")):
                subprocess.run(["cp", f, os.path.join(p, "debs")], check=True)
        os.makedirs(os.path.join(p, "out", "work"), exist_ok=True)
        res = m.vm.run_vm(flavour, p, os.path.join(m.OUT, name), timeout=ctx.timeout,
                          stream=ctx.stream, mock_cmd=m.mock_cmd())
        return res, man

    @m.scenario("migrate-ifupdown-static", needs="stage2")
    def ifupdown_static(ctx):
        res, man = run(ctx, "migrate-ifupdown-static", "sysvinit", IFUPDOWN_PRE)
        m.vm_ok(res, "reboot")
        check(m.stage1_rc(res) == "0", "stage 1 did not exit 0")
        m.assert_migrated(res, res["root_disk"], man, "sysvinit", backup=False)
        kf = keyfiles(m.inspect_disk, res["root_disk"])
        eth = [t for n, t in kf.items() if n.startswith("ethernet-")]
        check(len(eth) == 1, f"expected one ethernet keyfile, got {sorted(kf)}")
        v4 = section(eth[0], "ipv4")
        check(v4.get("method") == "manual", f"ipv4 method {v4.get('method')}")
        check(v4.get("address1") == "10.0.2.15/24,10.0.2.2", f"address1 {v4.get('address1')}")
        check(v4.get("dns") == "10.0.2.3;", f"dns {v4.get('dns')}")
        check(v4.get("dns-search") == "vm.example;", f"dns-search {v4.get('dns-search')}")
        check(v4.get("route-metric") == "50", f"route-metric {v4.get('route-metric')}")
        report = m.read(res["out"] + "/report.json", "{}")
        check('"ifupdown"' in report, "the report names no ifupdown source")
        return (f"run {res['seconds']} s; ethernet keyfile {v4.get('address1')} dns {v4.get('dns')} "
                f"metric {v4.get('route-metric')}; {len(kf)} keyfiles: {', '.join(sorted(kf))}")

    @m.scenario("migrate-netplan-static-wifi", needs="stage2")
    def netplan_static_wifi(ctx):
        res, man = run(ctx, "migrate-netplan-static-wifi", "systemd", NETPLAN_PRE,
                       debs=netplan_debs(m))
        m.vm_ok(res, "reboot")
        gen = m.read(res["out"] + "/netplan-generated", "")
        check("netplan-eth0.nmconnection" in gen,
              f"netplan's generator wrote no NetworkManager profile for eth0: {gen!r} "
              f"(dpkg: {m.read(res['out'] + '/dpkg.log', '')[-300:]!r})")
        check(m.stage1_rc(res) == "0", "stage 1 did not exit 0")
        m.assert_migrated(res, res["root_disk"], man, "systemd", backup=False)
        kf = keyfiles(m.inspect_disk, res["root_disk"])
        eth = {n: t for n, t in kf.items() if n.startswith("ethernet-")}
        check(len(eth) == 1, f"expected one ethernet keyfile, got {sorted(kf)}")
        text = next(iter(eth.values()))
        check("from netplan" in text, "the ethernet keyfile does not come from netplan")
        v4 = section(text, "ipv4")
        check(v4.get("address1") == "10.0.2.15/24,10.0.2.2", f"address1 {v4.get('address1')}")
        check(v4.get("dns") == "10.0.2.3;", f"dns {v4.get('dns')}")
        yard = [t for t in kf.values() if "ssid=Netplan Yard" in t]
        check(len(yard) == 1 and "psk=netplan-yard-pass-1" in yard[0], "netplan wifi missing")
        report = m.read(res["out"] + "/report.json", "{}")
        check("generated by netplan" in report, "the generated netplan-* profiles are not reported")
        check('"ignored"' in report and "Wired eth0" in report,
              "NetworkManager's own eth0 profile is not reported as ignored")
        return (f"run {res['seconds']} s; netplan generated {len(gen.split())} NM profiles; "
                f"eth0 {v4.get('address1')} dns {v4.get('dns')}; keyfiles {', '.join(sorted(kf))}")
