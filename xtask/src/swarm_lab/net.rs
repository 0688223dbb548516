//! The lab's network: a namespace and veth pair per node on one bridge,
//! and the iptables rules that let the nodes talk and reach out.

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::{Node, BRIDGE, SUBNET};
use crate::exec::{self, QUERY};
use crate::ui::Ui;

/// The netns, the veth pair into it, its address, loopback and route.
pub(super) fn wire(sh: &Shell, ui: Ui, node: &Node) -> Result<()> {
    let (ns, addr) = (&node.name, format!("{}/24", node.address));
    let gateway = format!("{SUBNET}.1");
    for step in [
        cmd!(sh, "ip netns add {ns}"),
        cmd!(sh, "ip link add {ns} type veth peer name eth0 netns {ns}"),
        cmd!(sh, "ip link set {ns} master {BRIDGE} up"),
        cmd!(sh, "ip -n {ns} addr add {addr} dev eth0"),
        cmd!(sh, "ip -n {ns} link set eth0 up"),
        cmd!(sh, "ip -n {ns} link set lo up"),
        cmd!(sh, "ip -n {ns} route add default via {gateway}"),
    ] {
        exec::run(step, QUERY, ui)?;
    }
    Ok(())
}

/// The lab's iptables rules: `(table, chain, match and target)`.
pub(super) fn rules() -> Vec<(&'static str, &'static str, String)> {
    let net = format!("{SUBNET}.0/24");
    vec![
        ("filter", "FORWARD", format!("-i {BRIDGE} -j ACCEPT")),
        (
            "filter",
            "FORWARD",
            format!("-o {BRIDGE} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        ),
        (
            "nat",
            "POSTROUTING",
            format!("-s {net} ! -o {BRIDGE} -j MASQUERADE"),
        ),
    ]
}

/// `iptables -t TABLE {op} CHAIN RULE...`
pub(super) fn iptables(
    sh: &Shell,
    ui: Ui,
    op: &str,
    (table, chain, rule): &(&str, &str, String),
) -> Result<()> {
    let words: Vec<&str> = rule.split_whitespace().collect();
    exec::run(
        cmd!(sh, "iptables -t {table} {op} {chain} {words...}"),
        QUERY,
        ui,
    )
    .with_context(|| format!("iptables {op} {chain} {rule}"))
}

/// The node numbers of `ltlab-<n>` network namespaces on the machine.
pub(super) fn existing_indices(sh: &Shell, ui: Ui) -> Vec<u32> {
    exec::read(cmd!(sh, "ip netns list"), QUERY, ui)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|n| n.strip_prefix("ltlab-"))
        .filter_map(|n| n.parse().ok())
        .collect()
}
