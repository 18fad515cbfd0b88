//! A fast discard SMTP sink for `benches/send.sh`: answers 250 to every
//! transaction and keeps nothing, so that the benchmark measures the
//! clients rather than the server (the aiosmtpd sink spends about a
//! millisecond of CPU per message, which caps any client near 1,000
//! messages a second).
//!
//! Standalone on purpose (std only, compiled by `rustc` from the harness,
//! like `gen.rs`): it adds no dependency and no target to the crate.
//!
//! Usage: sink [PORT [DELAY_US]]   (port 0 or nothing: a free port; DELAY_US:
//! microseconds to wait before each batch of replies, a stand-in for the
//! round trip to a real server)
//!
//! Listens on 127.0.0.1 only, one thread per connection, prints
//! `PORT <n>` once ready and runs until killed. It speaks enough ESMTP for
//! lettre and smtplib: EHLO/HELO (advertising PIPELINING, 8BITMIME,
//! SMTPUTF8, SIZE), MAIL, RCPT, DATA, RSET, NOOP, QUIT. Replies to
//! pipelined commands are written together once the input buffered so far
//! is used up, as RFC 2920 asks. On stderr, when a connection closes:
//! `messages <n> bytes <b>` for it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
    // Optional: microseconds to wait before each batch of replies, to
    // stand in for a network round trip (loopback has almost none).
    let delay = std::time::Duration::from_micros(
        std::env::args()
            .nth(2)
            .and_then(|d| d.parse().ok())
            .unwrap_or(0),
    );
    let port = listener.local_addr().expect("local address").port();
    println!("PORT {port}");
    let _ = std::io::stdout().flush();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = serve(stream, delay);
        });
    }
}

/// Where the end of the DATA terminator `\r\n.\r\n` is in `buf`, counting
/// the CRLF before the dot as possibly already consumed (`at_line_start`).
fn data_end(buf: &[u8], at_line_start: bool) -> Option<usize> {
    if at_line_start && buf.starts_with(b".\r\n") {
        return Some(3);
    }
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\n') {
        let i = from + i;
        if buf[i + 1..].starts_with(b".\r\n") && i > 0 && buf[i - 1] == b'\r' {
            return Some(i + 4);
        }
        from = i + 1;
    }
    None
}

fn serve(mut stream: TcpStream, delay: std::time::Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.write_all(b"220 sink.localhost ESMTP discard\r\n")?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut start = 0; // unconsumed input begins here
    let mut replies: Vec<u8> = Vec::with_capacity(1024);
    let mut in_data = false;
    let mut data_line_start = true;
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        // Use up what is buffered.
        loop {
            if in_data {
                match data_end(&buf[start..], data_line_start) {
                    Some(n) => {
                        bytes += n as u64;
                        start += n;
                        in_data = false;
                        messages += 1;
                        replies.extend_from_slice(b"250 2.0.0 discarded\r\n");
                    }
                    None => {
                        // Keep the last four bytes: a terminator may straddle reads.
                        let keep = buf.len().saturating_sub(4).max(start);
                        bytes += (keep - start) as u64;
                        // Once bytes are skipped, the kept ones hold the CRLF.
                        data_line_start &= keep == start;
                        start = keep;
                        break;
                    }
                }
                continue;
            }
            let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = &buf[start..start + nl + 1];
            start += nl + 1;
            let verb: Vec<u8> = line
                .iter()
                .take_while(|b| b.is_ascii_alphabetic())
                .map(u8::to_ascii_uppercase)
                .collect();
            match verb.as_slice() {
                b"EHLO" => replies.extend_from_slice(
                    b"250-sink.localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 104857600\r\n",
                ),
                b"HELO" => replies.extend_from_slice(b"250 sink.localhost\r\n"),
                b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => {
                    replies.extend_from_slice(b"250 2.0.0 ok\r\n")
                }
                b"DATA" => {
                    replies.extend_from_slice(b"354 end with <CRLF>.<CRLF>\r\n");
                    in_data = true;
                    data_line_start = true;
                }
                b"QUIT" => {
                    replies.extend_from_slice(b"221 2.0.0 bye\r\n");
                    stream.write_all(&replies)?;
                    eprintln!("messages {messages} bytes {bytes}");
                    return Ok(());
                }
                _ => replies.extend_from_slice(b"502 5.5.2 not implemented\r\n"),
            }
        }
        if !replies.is_empty() {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            stream.write_all(&replies)?;
            replies.clear();
        }
        buf.drain(..start);
        start = 0;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            eprintln!("messages {messages} bytes {bytes}");
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::data_end;

    #[test]
    fn terminator() {
        assert_eq!(data_end(b"a\r\n.\r\nMAIL", false), Some(6));
        assert_eq!(data_end(b".\r\n", true), Some(3));
        assert_eq!(data_end(b".\r\n", false), None);
        assert_eq!(data_end(b"a\r\n..\r\n", false), None);
        assert_eq!(data_end(b"a\n.\r\n", false), None);
    }
}
