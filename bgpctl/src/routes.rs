//! `bgpctl show routes`: asks bgpd for a page of routes and prints the stream as it
//! arrives, in prefix order (IPv4 before IPv6, each prefix's best path first).
//!
//! With `--json`, one JSON object per line (NDJSON), each a `RouteView`. Without it,
//! a table printed a chunk at a time (what has arrived when the socket has nothing
//! more ready, at most [`CHUNK`] paths): each chunk is its own table with fixed
//! minimum column widths, wide enough for IPv6 prefixes (43 characters), sources and
//! a next hop (39), so the chunks line up; with `--family ipv4` the prefix column is
//! narrower. A prefix is printed on its first path only, like `birdc show route`.
//! The last column is FRR's `Path`: the whole AS path (an AS_SET as `{a,b}`) and
//! the origin code (`i`, `e`, `?`).
//!
//! Paging: `--limit N` stops after N prefixes (with all their paths); the table's
//! last line then names the last prefix, to give as `--after PREFIX` for the next
//! page. bgpctl keeps one chunk in memory whatever the table's size.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use control_proto::{FamilyName, Request, Response, RouteLine, RouteQuery, RouteTable, RoutesEnd};
use ipnet::IpNet;

use crate::client::Connection;
use crate::client::{Answers, ClientError, socket_path};
use crate::output::{WriteStop, fail, stopped, write_out};
use crate::table::{self, ADDRESS_WIDTH, Column, PREFIX_WIDTH};

/// Most paths printed as one table.
pub const CHUNK: usize = 1024;
/// `255.255.255.255/32`.
const IPV4_PREFIX_WIDTH: u16 = 18;

/// `bgpctl show routes [PREFIX] [--family F] [--neighbor ADDR --received|--advertised]
/// [--limit N] [--after PREFIX]`.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// A prefix (exact) or an address (longest match).
    pub prefix: Option<String>,
    #[arg(long, value_enum)]
    pub family: Option<Family>,
    /// With --received or --advertised: that neighbor's routes.
    #[arg(long, value_name = "ADDR")]
    pub neighbor: Option<IpAddr>,
    /// What the neighbor sent us (before import policy).
    #[arg(long, requires = "neighbor", conflicts_with = "advertised")]
    pub received: bool,
    /// What we send the neighbor.
    #[arg(long, requires = "neighbor")]
    pub advertised: bool,
    /// At most N prefixes (each with all its paths).
    #[arg(long, value_name = "N", conflicts_with = "prefix")]
    pub limit: Option<u64>,
    /// Only prefixes after this one (the last prefix of the previous page).
    #[arg(long, value_name = "PREFIX", conflicts_with = "prefix")]
    pub after: Option<IpNet>,
}

/// Runs `show routes`.
pub fn show(connection: &Connection, args: &RoutesArgs) -> ExitCode {
    let request = match request(args) {
        Ok(request) => request,
        Err(message) => return fail(&message),
    };
    let path = socket_path(connection.socket.as_deref());
    let answers = match Answers::send(&path, &request) {
        Ok(answers) => answers,
        Err(error) => return fail(&error.to_string()),
    };
    let prefix_width = match args.family {
        Some(Family::Ipv4) => IPV4_PREFIX_WIDTH,
        _ => PREFIX_WIDTH,
    };
    let mut printer = Printer {
        json: connection.json,
        columns: columns(prefix_width),
        header: true,
        previous: None,
        out: std::io::stdout().lock(),
    };
    match print_stream(answers, &mut printer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Write(stop)) => stopped(stop),
        Err(Stop::Answer(error)) => fail(&error.to_string()),
    }
}

/// The request the arguments make.
fn request(args: &RoutesArgs) -> Result<Request, String> {
    let prefix = match &args.prefix {
        None => None,
        Some(text) => Some(match text.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => text
                .parse::<IpAddr>()
                .map(IpNet::from)
                .map_err(|_| format!("{text:?} is neither a prefix nor an address"))?,
        }),
    };
    let view = if args.received {
        RouteTable::Received
    } else if args.advertised {
        RouteTable::Advertised
    } else {
        RouteTable::LocRib
    };
    if args.neighbor.is_some() && view == RouteTable::LocRib {
        return Err("--neighbor needs --received or --advertised".into());
    }
    if args.limit == Some(0) {
        return Err("--limit must be at least 1".into());
    }
    Ok(Request::ShowRoutes {
        query: RouteQuery {
            prefix,
            family: args.family.map(FamilyName::from),
            neighbor: args.neighbor,
            view,
        },
        after: args.after,
        limit: args.limit,
    })
}

/// Why printing stopped early.
#[derive(Debug)]
enum Stop {
    Write(WriteStop),
    Answer(ClientError),
}

/// Reads the answer's lines and prints them a chunk at a time.
fn print_stream(
    mut answers: Answers,
    printer: &mut Printer<impl std::io::Write>,
) -> Result<(), Stop> {
    let mut chunk = Vec::new();
    loop {
        match answers.next_line().map_err(Stop::Answer)? {
            Response::Route(route) => {
                chunk.push(route);
                if chunk.len() >= CHUNK || !answers.pending() {
                    printer.chunk(&chunk).map_err(Stop::Write)?;
                    chunk.clear();
                }
            }
            Response::End(end) => {
                printer.chunk(&chunk).map_err(Stop::Write)?;
                return printer.end(&end).map_err(Stop::Write);
            }
            Response::Error(message) => {
                printer.chunk(&chunk).map_err(Stop::Write)?;
                return Err(Stop::Answer(ClientError::Daemon(message)));
            }
            Response::Ok(answer) => {
                return Err(Stop::Answer(ClientError::BadAnswer(format!(
                    "{answer:?} where routes were due"
                ))));
            }
            other @ (Response::Event(_) | Response::Disconnected(_)) => {
                return Err(Stop::Answer(ClientError::BadAnswer(format!(
                    "{other:?} where routes were due"
                ))));
            }
        }
    }
}

/// Prints chunks of routes as a table or as JSON lines.
struct Printer<W: std::io::Write> {
    json: bool,
    columns: [Column; 7],
    /// The header is still to be printed.
    header: bool,
    /// The prefix of the last path printed.
    previous: Option<IpNet>,
    out: W,
}

impl<W: std::io::Write> Printer<W> {
    fn chunk(&mut self, routes: &[RouteLine]) -> Result<(), WriteStop> {
        if routes.is_empty() {
            return Ok(());
        }
        let text = if self.json {
            let mut text = String::new();
            for route in routes {
                // A RouteView is addresses, numbers and strings: it always encodes.
                if let Ok(line) = serde_json::to_string(&route.view) {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
        } else {
            let rows: Vec<Vec<String>> = routes
                .iter()
                .map(|route| {
                    let shown = self.previous != Some(route.prefix);
                    self.previous = Some(route.prefix);
                    row(route, shown)
                })
                .collect();
            let text = table::render(&self.columns, &rows, self.header);
            self.header = false;
            text
        };
        write_out(&mut self.out, &text)
    }

    fn end(&mut self, end: &RoutesEnd) -> Result<(), WriteStop> {
        if self.json {
            return Ok(());
        }
        let mut text = String::new();
        if end.paths == 0 {
            text.push_str("No routes\n");
        }
        text.push_str(&format!("{} prefixes, {} paths", end.prefixes, end.paths));
        if let Some(next) = end.next {
            text.push_str(&format!("; more after {next} (--after {next})"));
        }
        text.push('\n');
        write_out(&mut self.out, &text)
    }
}

/// The table's columns; every one but the last has a fixed minimum width.
fn columns(prefix_width: u16) -> [Column; 7] {
    [
        Column::left("Prefix").min(prefix_width),
        Column::left("Best").min(4),
        Column::right("LocPrf").min(6),
        Column::right("MED").min(10),
        Column::left("Source").min(ADDRESS_WIDTH),
        Column::left("Next hops").min(ADDRESS_WIDTH),
        Column::left("Path"),
    ]
}

/// One path as a row; the prefix only on its first path.
fn row(route: &RouteLine, shown: bool) -> Vec<String> {
    let origin = match route.origin.as_str() {
        "igp" => "i",
        "egp" => "e",
        _ => "?",
    };
    let path = if route.path.is_empty() {
        origin.to_owned()
    } else {
        format!("{} {origin}", route.path)
    };
    let next_hops = if route.next_hops.is_empty() {
        "local".to_owned()
    } else {
        route
            .next_hops
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        if shown {
            route.prefix.to_string()
        } else {
            String::new()
        },
        if route.best { "*" } else { "" }.to_owned(),
        route.local_pref.map_or(String::new(), |v| v.to_string()),
        route.med.map_or(String::new(), |v| v.to_string()),
        route.source.clone(),
        next_hops,
        path,
    ]
}

/// `--family`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl From<Family> for control_proto::FamilyName {
    fn from(family: Family) -> control_proto::FamilyName {
        match family {
            Family::Ipv4 => control_proto::FamilyName::Ipv4,
            Family::Ipv6 => control_proto::FamilyName::Ipv6,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use control_proto::RouteView;

    fn route(prefix: &str, next_hop: &str, best: bool) -> RouteLine {
        RouteLine {
            view: RouteView {
                prefix: prefix.parse().unwrap(),
                next_hops: vec![next_hop.parse().unwrap()],
                as_path: vec![65002, 65001, 65003],
                origin: "igp".into(),
                local_pref: Some(100),
                med: None,
                communities: vec![],
                best,
                source: next_hop.into(),
            },
            path: "65002 {65001,65003}".into(),
        }
    }

    fn printer(json: bool) -> Printer<Vec<u8>> {
        Printer {
            json,
            columns: columns(PREFIX_WIDTH),
            header: true,
            previous: None,
            out: Vec::new(),
        }
    }

    const V6: &str = "2001:db80:aaaa:bbbb:cccc:dddd:eeee:ff00/120";
    const V6_HOP: &str = "2001:db80:aaaa:bbbb:cccc:dddd:eeee:ff01";

    #[test]
    fn chunks_print_as_one_aligned_table() {
        let mut printer = printer(false);
        printer
            .chunk(&[
                route("10.58.3.0/24", "10.17.8.30", true),
                route("10.58.3.0/24", "10.17.8.31", false),
            ])
            .unwrap();
        printer.chunk(&[route(V6, V6_HOP, true)]).unwrap();
        printer
            .end(&RoutesEnd {
                prefixes: 2,
                paths: 3,
                next: Some(V6.parse().unwrap()),
            })
            .unwrap();
        let text = String::from_utf8(printer.out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("Prefix "), "{text}");
        assert!(lines[1].starts_with("10.58.3.0/24 "), "{text}");
        assert!(lines[2].starts_with("    "), "the prefix once: {text}");
        assert!(lines[3].starts_with(V6), "{text}");
        // Every column starts at the same offset in both chunks.
        for header in ["Best", "LocPrf", "Source", "Next hops", "Path"] {
            let at = lines[0].find(header).unwrap();
            let header_end = at + header.len();
            for line in &lines[1..4] {
                let cell = match header {
                    "Best" => &line[at..at + 1],
                    "LocPrf" => &line[header_end - 3..header_end],
                    _ => &line[at..at + 2],
                };
                assert!(
                    !cell.trim().is_empty() || header == "Best",
                    "{header} in {line:?}\n{text}"
                );
            }
        }
        let hops = lines[0].find("Next hops").unwrap();
        assert!(lines[1][hops..].starts_with("10.17.8.30 "), "{text}");
        assert!(lines[3][hops..].starts_with(V6_HOP), "{text}");
        // FRR's Path: the whole AS path, sets in braces, then the origin code.
        let path = lines[0].find("Path").unwrap();
        assert_eq!(&lines[1][path..], "65002 {65001,65003} i", "{text}");
        assert_eq!(&lines[3][path..], "65002 {65001,65003} i", "{text}");
        assert_eq!(lines[1].find('*'), lines[0].find("Best"), "{text}");
        assert_eq!(lines[3].find('*'), lines[0].find("Best"), "{text}");
        assert_eq!(
            lines[4],
            format!("2 prefixes, 3 paths; more after {V6} (--after {V6})")
        );
    }

    #[test]
    fn json_is_one_route_per_line() {
        let mut printer = printer(true);
        let routes = [
            route("10.58.3.0/24", "10.17.8.30", true),
            route(V6, V6_HOP, true),
        ];
        printer.chunk(&routes[..1]).unwrap();
        printer.chunk(&routes[1..]).unwrap();
        printer.end(&RoutesEnd::default()).unwrap();
        let text = String::from_utf8(printer.out).unwrap();
        let back: Vec<RouteView> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let views: Vec<RouteView> = routes.iter().map(|route| route.view.clone()).collect();
        assert_eq!(back, views);
        // The JSON is the view alone: the table's path text is not in it.
        assert!(!text.contains("{65001"), "{text}");
    }

    #[test]
    fn an_empty_answer_says_so() {
        let mut printer = printer(false);
        printer.end(&RoutesEnd::default()).unwrap();
        assert_eq!(
            String::from_utf8(printer.out).unwrap(),
            "No routes\n0 prefixes, 0 paths\n"
        );
    }
}
