//! The cluster zone as an immutable snapshot: every owner name with its record sets
//! (empty non-terminals included, so NODATA and NXDOMAIN are told apart), the
//! reverse (`in-addr.arpa`/`ip6.arpa`) names of Service and endpoint IPs, and the one
//! lookup both the wire server and `lookup_ip` use.
//!
//! A snapshot is built whole by [`ZoneBuilder`] and swapped in atomically; lookups
//! borrow records from it, so answering never clones a record.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

/// The TTL of every record, as CoreDNS's kubernetes plugin (`ttl`, default 5 s):
/// short, because Services and endpoints change under the clients' feet.
pub(crate) const TTL: u32 = 5;

/// How many CNAMEs a lookup follows inside the zone before giving up (a loop guard).
const MAX_CHAIN: usize = 8;

/// One record set and the records that go in the additional section with it (the
/// addresses of SRV targets).
#[derive(Debug)]
struct RecordSet {
    rtype: RecordType,
    records: Vec<Record>,
    additionals: Vec<Record>,
}

/// The record sets of one owner name; none for an empty non-terminal.
#[derive(Debug, Default)]
struct Node {
    sets: Vec<RecordSet>,
}

impl Node {
    fn set(&self, rtype: RecordType) -> Option<&RecordSet> {
        self.sets.iter().find(|s| s.rtype == rtype)
    }
}

/// What the zone says about one question.
#[derive(Debug, Default)]
pub(crate) struct Answer<'z> {
    /// `NoError` (with or without answers) or `NXDomain`.
    pub code: ResponseCode,
    /// The answer section: a CNAME chain first, then the records asked for.
    pub answers: Vec<&'z Record>,
    /// The zone's SOA for a negative answer (NODATA or NXDOMAIN), for the authority section.
    pub soa: Option<&'z Record>,
    /// The additional section (addresses of SRV targets).
    pub additionals: Vec<&'z Record>,
    /// A CNAME chain that left the zone: the name (and type) still to be resolved elsewhere.
    pub external: Option<&'z Name>,
    /// Whether the answer is authoritative (false only for reverse names we merely know).
    pub authoritative: bool,
}

impl Answer<'_> {
    /// The addresses among the answers (A and AAAA records, whatever their owner).
    pub(crate) fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.answers.iter().filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
    }
}

/// An immutable snapshot of the cluster zone.
#[derive(Debug)]
pub(crate) struct Zone {
    origin: LowerName,
    soa: Record,
    nodes: HashMap<LowerName, Node>,
    reverse: HashMap<LowerName, Vec<Record>>,
}

impl Zone {
    /// The zone's serial (bumped by every rebuild).
    #[cfg(test)]
    pub(crate) fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }

    /// Whether `name` is at or below the zone's apex.
    pub(crate) fn contains(&self, name: &LowerName) -> bool {
        self.origin.zone_of(name)
    }

    /// Answer `rtype` for `name`, or `None` when the name is not ours to answer (outside
    /// the zone, or a reverse name of an address we do not know).
    pub(crate) fn lookup(&self, name: &LowerName, rtype: RecordType) -> Option<Answer<'_>> {
        if !self.contains(name) {
            return self.reverse(name, rtype);
        }
        let mut answer = Answer {
            authoritative: true,
            ..Answer::default()
        };
        let mut current = name.clone();
        for _ in 0..MAX_CHAIN {
            let Some(node) = self.nodes.get(&current) else {
                answer.code = ResponseCode::NXDomain;
                answer.soa = Some(&self.soa);
                return Some(answer);
            };
            if rtype == RecordType::ANY {
                for set in &node.sets {
                    answer.answers.extend(set.records.iter());
                    answer.additionals.extend(set.additionals.iter());
                }
            } else if let Some(set) = node.set(rtype) {
                answer.answers.extend(set.records.iter());
                answer.additionals.extend(set.additionals.iter());
            } else if let Some(cname) = node.set(RecordType::CNAME)
                && let Some(record) = cname.records.first()
                && let RData::CNAME(target) = &record.data
            {
                answer.answers.push(record);
                let target_lower = LowerName::new(&target.0);
                if self.contains(&target_lower) {
                    current = target_lower;
                    continue;
                }
                answer.external = Some(&target.0);
                return Some(answer);
            }
            if answer.answers.is_empty() || answer.answers.iter().all(is_cname) {
                answer.soa = Some(&self.soa);
            }
            return Some(answer);
        }
        // A CNAME loop inside the zone: answer what was followed, as servers do.
        Some(answer)
    }

    fn reverse(&self, name: &LowerName, rtype: RecordType) -> Option<Answer<'_>> {
        let records = self.reverse.get(name)?;
        if !matches!(rtype, RecordType::PTR | RecordType::ANY) {
            return None;
        }
        Some(Answer {
            answers: records.iter().collect(),
            authoritative: true,
            ..Answer::default()
        })
    }
}

fn is_cname(record: &&Record) -> bool {
    record.record_type() == RecordType::CNAME
}

/// Collects records into a [`Zone`]: adding a record also makes every name between
/// it and the apex exist (as an empty non-terminal), and duplicates are dropped.
#[derive(Debug)]
pub(crate) struct ZoneBuilder {
    origin: Name,
    nodes: HashMap<LowerName, Node>,
    reverse: HashMap<LowerName, Vec<Record>>,
    seen: HashSet<(LowerName, RData)>,
}

impl ZoneBuilder {
    /// An empty zone at `origin` (a fully qualified name).
    pub(crate) fn new(origin: Name) -> ZoneBuilder {
        let mut builder = ZoneBuilder {
            origin,
            nodes: HashMap::new(),
            reverse: HashMap::new(),
            seen: HashSet::new(),
        };
        builder
            .nodes
            .insert(LowerName::new(&builder.origin), Node::default());
        builder
    }

    /// Make `name` exist without records (e.g. `default.svc.cluster.local.`).
    pub(crate) fn touch(&mut self, name: &Name) {
        self.node(name);
    }

    /// Add one record at `name` (inside the zone; others are ignored).
    pub(crate) fn add(&mut self, name: &Name, data: RData) {
        self.add_with(name, data, None);
    }

    /// Add an address record (A or AAAA) at `name`.
    pub(crate) fn add_address(&mut self, name: &Name, ip: IpAddr) {
        let data = match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        self.add(name, data);
    }

    /// Add a record whose set carries `additional` in the additional section.
    pub(crate) fn add_with(&mut self, name: &Name, data: RData, additional: Option<Vec<Record>>) {
        if !self.seen.insert((LowerName::new(name), data.clone())) {
            return;
        }
        let rtype = data.record_type();
        let record = Record::from_rdata(name.clone(), TTL, data);
        let Some(node) = self.node(name) else {
            return;
        };
        match node.sets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => {
                set.records.push(record);
                set.additionals.extend(additional.unwrap_or_default());
            }
            None => node.sets.push(RecordSet {
                rtype,
                records: vec![record],
                additionals: additional.unwrap_or_default(),
            }),
        }
    }

    /// Add the PTR record of `ip` pointing at `target`.
    pub(crate) fn add_ptr(&mut self, ip: IpAddr, target: &Name) {
        let Ok(owner) = Name::from_ascii(reverse_name(ip)) else {
            return;
        };
        let data = RData::PTR(PTR(target.clone()));
        if !self.seen.insert((LowerName::new(&owner), data.clone())) {
            return;
        }
        let record = Record::from_rdata(owner.clone(), TTL, data);
        self.reverse
            .entry(LowerName::new(&owner))
            .or_default()
            .push(record);
    }

    /// The records already added at `name` of type `rtype` (to build SRV additionals).
    pub(crate) fn records(&self, name: &Name, rtype: RecordType) -> Vec<Record> {
        self.nodes
            .get(&LowerName::new(name))
            .and_then(|n| n.set(rtype))
            .map(|s| s.records.clone())
            .unwrap_or_default()
    }

    /// Finish the zone: the SOA and NS records at the apex (`ns.dns.<zone>`, as
    /// CoreDNS names itself), with the given serial.
    pub(crate) fn build(mut self, serial: u32) -> Zone {
        let origin = self.origin.clone();
        let ns_name = Name::from_labels(["ns", "dns"])
            .and_then(|n| n.append_domain(&origin))
            .unwrap_or_else(|_| origin.clone());
        let hostmaster = Name::from_labels(["hostmaster"])
            .and_then(|n| n.append_domain(&origin))
            .unwrap_or_else(|_| origin.clone());
        // refresh, retry, expire and minimum as CoreDNS's kubernetes plugin: the
        // minimum (negative-caching TTL) is the record TTL, so a Service created after a
        // miss is seen within seconds.
        let soa = SOA::new(ns_name.clone(), hostmaster, serial, 7200, 1800, 86400, TTL);
        self.add(&origin, RData::SOA(soa.clone()));
        self.add(&origin, RData::NS(NS(ns_name)));
        Zone {
            origin: LowerName::new(&origin),
            soa: Record::from_rdata(origin, TTL, RData::SOA(soa)),
            nodes: self.nodes,
            reverse: self.reverse,
        }
    }

    /// The node of `name`, created with its ancestors up to the apex; `None` outside the zone.
    fn node(&mut self, name: &Name) -> Option<&mut Node> {
        if !self.origin.zone_of(name) {
            return None;
        }
        let mut ancestor = name.base_name();
        while ancestor.num_labels() > self.origin.num_labels() {
            self.nodes.entry(LowerName::new(&ancestor)).or_default();
            ancestor = ancestor.base_name();
        }
        Some(self.nodes.entry(LowerName::new(name)).or_default())
    }
}

/// `4.3.2.1.in-addr.arpa.` for 1.2.3.4; nibbles under `ip6.arpa.` for IPv6.
pub(crate) fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(73);
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            out.push_str("ip6.arpa.");
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::CNAME;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn lower(s: &str) -> LowerName {
        LowerName::new(&name(s))
    }

    fn zone() -> Zone {
        let mut b = ZoneBuilder::new(name("cluster.local."));
        b.add_address(
            &name("web.default.svc.cluster.local."),
            "10.96.0.5".parse().unwrap(),
        );
        b.add(
            &name("alias.default.svc.cluster.local."),
            RData::CNAME(CNAME(name("web.default.svc.cluster.local."))),
        );
        b.add(
            &name("ext.default.svc.cluster.local."),
            RData::CNAME(CNAME(name("example.com."))),
        );
        b.add_ptr(
            "10.96.0.5".parse().unwrap(),
            &name("web.default.svc.cluster.local."),
        );
        b.build(7)
    }

    #[test]
    fn an_existing_name_answers_its_records_case_insensitively() {
        let zone = zone();
        let answer = zone
            .lookup(&lower("WEB.Default.svc.cluster.local."), RecordType::A)
            .expect("in zone");
        assert_eq!(answer.code, ResponseCode::NoError);
        assert_eq!(
            answer.addresses().collect::<Vec<_>>(),
            ["10.96.0.5".parse::<IpAddr>().unwrap()]
        );
        assert!(answer.soa.is_none());
    }

    #[test]
    fn a_missing_type_is_nodata_with_the_soa_and_a_missing_name_is_nxdomain() {
        let zone = zone();
        let nodata = zone
            .lookup(&lower("web.default.svc.cluster.local."), RecordType::AAAA)
            .expect("in zone");
        assert_eq!(nodata.code, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert!(nodata.soa.is_some());
        let nx = zone
            .lookup(&lower("nope.default.svc.cluster.local."), RecordType::A)
            .expect("in zone");
        assert_eq!(nx.code, ResponseCode::NXDomain);
        assert!(nx.soa.is_some());
        assert_eq!(zone.serial(), 7);
    }

    #[test]
    fn empty_non_terminals_exist() {
        let zone = zone();
        for n in ["default.svc.cluster.local.", "svc.cluster.local."] {
            let answer = zone.lookup(&lower(n), RecordType::A).expect("in zone");
            assert_eq!(answer.code, ResponseCode::NoError, "{n}");
            assert!(answer.answers.is_empty());
        }
    }

    #[test]
    fn cnames_are_followed_inside_the_zone_and_reported_when_they_leave_it() {
        let zone = zone();
        let inside = zone
            .lookup(&lower("alias.default.svc.cluster.local."), RecordType::A)
            .expect("in zone");
        assert_eq!(inside.answers.len(), 2);
        assert_eq!(inside.answers[0].record_type(), RecordType::CNAME);
        assert!(inside.external.is_none());
        let outside = zone
            .lookup(&lower("ext.default.svc.cluster.local."), RecordType::A)
            .expect("in zone");
        assert_eq!(outside.answers.len(), 1);
        assert_eq!(outside.external, Some(&name("example.com.")));
        let cname = zone
            .lookup(&lower("ext.default.svc.cluster.local."), RecordType::CNAME)
            .expect("in zone");
        assert!(cname.external.is_none());
    }

    #[test]
    fn reverse_names_of_known_ips_answer_and_others_are_not_ours() {
        let zone = zone();
        let ptr = zone
            .lookup(&lower("5.0.96.10.in-addr.arpa."), RecordType::PTR)
            .expect("known");
        assert_eq!(ptr.answers.len(), 1);
        assert!(
            zone.lookup(&lower("6.0.96.10.in-addr.arpa."), RecordType::PTR)
                .is_none()
        );
        assert!(zone.lookup(&lower("example.com."), RecordType::A).is_none());
    }

    #[test]
    fn reverse_names_follow_the_arpa_conventions() {
        assert_eq!(
            reverse_name("1.2.3.4".parse().unwrap()),
            "4.3.2.1.in-addr.arpa."
        );
        assert!(reverse_name("2001:db8::1".parse().unwrap()).starts_with(
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        ));
    }
}
