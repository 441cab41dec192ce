//! The dataplane's series, from the dataplane task's [`Status`] (published after
//! each of its syncs, read at the scrape without asking the task anything):
//!
//! - `wren_dataplane_pod_mtu_bytes`: the pod MTU the CNI plugin reads (the
//!   `STATE_DIR/mtu` file; none before it is written);
//! - `wren_dataplane_underlay_mtu_bytes{interface}`: the up underlay interface with
//!   the smallest MTU, which the pod MTU follows (none when no interface matches);
//! - `wren_dataplane_errors_total{area}`: failed syncs (`mtu`, `nat`, `vxlan`,
//!   `forwarding`), since start;
//! - `wren_nat_outgoing_pools{family}`: pools with `nat_outgoing`;
//! - `wren_nat_table_synced`: the last sync made the nftables table `inet wren`
//!   what the pools ask for (0/1);
//! - `wren_nat_table_repairs_total`: times the table was found gone or of another
//!   shape, while what it should hold had not changed, and made again;
//! - `wren_vxlan_tunnel_up{device}`: the last sync made the device, its tunnel
//!   address and entries, and set it up (0/1), per device a VXLAN pool asks for;
//! - `wren_vxlan_remote_nodes{device}`: the remote nodes with a tunnel endpoint of
//!   the device's family (one FDB and one neighbour entry each);
//! - `wren_vxlan_changes_total`: changes made to the VXLAN devices and their
//!   entries (a device made, set or deleted, an address, a neighbour or FDB entry).
//!
//! The NAT and VXLAN families are there only with `[ipam]` (the task follows the
//! pools), the NAT ones from the first snapshot on.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::series::{self, Labels};
use crate::dataplane_task::{AREAS, Status};

/// One scrape's view of the dataplane.
#[derive(Clone, Debug)]
pub struct DataplaneSample {
    pub status: Status,
    /// The task follows IPAM's pools (with `[ipam]`): the VXLAN families are there.
    pub overlay: bool,
}

/// The `family` label of a pool count (`ipv4` / `ipv6`, as the pools' CIDRs are).
const POOL_FAMILIES: [&str; 2] = ["ipv4", "ipv6"];

impl Collector for DataplaneSample {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let status = &self.status;
        series::gauges(
            &mut encoder,
            "wren_dataplane_pod_mtu_bytes",
            "The pod MTU written for the CNI plugin, in bytes.",
            status.pod_mtu.map(|mtu| (Labels::new(), i64::from(mtu))),
        )?;
        series::gauges(
            &mut encoder,
            "wren_dataplane_underlay_mtu_bytes",
            "The MTU of the up underlay interface with the smallest one, which the pod MTU follows, in bytes.",
            status.underlay.as_ref().map(|underlay| {
                (
                    vec![("interface", underlay.interface.clone())],
                    i64::from(underlay.mtu),
                )
            }),
        )?;
        series::counters(
            &mut encoder,
            "wren_dataplane_errors",
            "Failed dataplane syncs, by area (mtu, nat, vxlan, forwarding), since start.",
            AREAS
                .iter()
                .zip(status.errors)
                .map(|(area, count)| (vec![("area", (*area).to_owned())], count)),
        )?;
        if let Some(nat) = &status.nat {
            series::gauges(
                &mut encoder,
                "wren_nat_outgoing_pools",
                "Pools with nat_outgoing, per family.",
                POOL_FAMILIES
                    .iter()
                    .zip(nat.pools)
                    .map(|(family, count)| (vec![("family", (*family).to_owned())], count as i64)),
            )?;
            series::gauge(
                &mut encoder,
                "wren_nat_table_synced",
                "The last sync made the nftables table inet wren what the pools ask for (0 or 1).",
                series::flag(nat.synced),
            )?;
            series::counter(
                &mut encoder,
                "wren_nat_table_repairs",
                "Times the nftables table inet wren was found gone or changed by someone else, and made again.",
                nat.repairs,
            )?;
        }
        if self.overlay {
            series::gauges(
                &mut encoder,
                "wren_vxlan_tunnel_up",
                "The last sync made the VXLAN device with its address and entries, and set it up (0 or 1).",
                status
                    .devices
                    .iter()
                    .map(|device| (device_label(device.name), series::flag(device.up))),
            )?;
            series::gauges(
                &mut encoder,
                "wren_vxlan_remote_nodes",
                "Remote nodes with a VXLAN tunnel endpoint of the device's family (one FDB entry each).",
                status
                    .devices
                    .iter()
                    .map(|device| (device_label(device.name), device.remote_nodes as i64)),
            )?;
            series::counter(
                &mut encoder,
                "wren_vxlan_changes",
                "Changes made to the VXLAN devices and their address, neighbour and FDB entries, since start.",
                status.vxlan_changes,
            )?;
        }
        Ok(())
    }
}

fn device_label(name: &str) -> Labels {
    vec![("device", name.to_owned())]
}
