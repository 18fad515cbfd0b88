//! Unit tests of `bounce::parse` on small hand-written messages, one per
//! rule; the real messages from many mail systems are in `tests/bounces/`.

use super::{parse, Report, Verdict};

fn read(raw: &str) -> Report {
    match parse(raw.as_bytes()) {
        Ok(report) => report,
        Err(error) => panic!("not read: {error}"),
    }
}

const DSN: &str = "Return-Path: <>\r
Delivered-To: bounces+abc123@news.example\r
Message-ID: <20240101.dsn@mx.example>\r
From: MAILER-DAEMON@mx.example (Mail Delivery System)\r
To: bounces+abc123@news.example\r
Subject: Undelivered Mail Returned to Sender\r
Auto-Submitted: auto-replied\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status;\r
\tboundary=\"B\"\r
\r
--B\r
Content-Type: text/plain\r
\r
I'm sorry to have to inform you that your message could not be delivered.\r
--B\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example\r
\r
Final-Recipient: rfc822; ok@dest.example\r
Action: delivered\r
Status: 2.0.0\r
\r
Final-Recipient: rfc822; gone@dest.example\r
Original-Recipient: rfc822;Gone@Dest.example\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 <gone@dest.example>: Recipient address\r
    rejected: User unknown\r
\r
--B\r
Content-Type: message/rfc822\r
\r
Message-ID: <issue-7.abc123@news.example>\r
From: news@news.example\r
To: gone@dest.example\r
Subject: Issue 7\r
\r
Hello\r
--B--\r
";

#[test]
fn a_failed_recipient_with_a_5_status_is_hard() {
    let report = read(DSN);
    assert_eq!(
        report,
        Report {
            verdict: Verdict::Hard,
            id: Some("20240101.dsn@mx.example".into()),
            delivered_to: vec!["bounces+abc123@news.example".into()],
            recipient: Some("gone@dest.example".into()),
            status: Some("5.1.1".into()),
            diagnostic: Some(
                "550 5.1.1 <gone@dest.example>: Recipient address rejected: User unknown".into()
            ),
            original_message_id: Some("issue-7.abc123@news.example".into()),
            legacy: false,
        }
    );
}

#[test]
fn delayed_and_4_statuses_are_soft_and_success_is_no_report() {
    let delayed = DSN
        .replace(
            "Action: failed\r\nStatus: 5.1.1",
            "Action: delayed\r\nStatus: 4.4.1",
        )
        .replace("550 5.1.1", "451 4.4.1");
    let report = read(&delayed);
    assert_eq!(report.verdict, Verdict::Soft);
    assert_eq!(report.status.as_deref(), Some("4.4.1"));
    let failed_4 = DSN.replace("Status: 5.1.1", "Status: 4.2.2");
    assert_eq!(read(&failed_4).verdict, Verdict::Soft);
    let success = DSN.replace(
        "Action: failed\r\nStatus: 5.1.1",
        "Action: relayed\r\nStatus: 2.0.0",
    );
    assert_eq!(read(&success).verdict, Verdict::NotAReport);
}

#[test]
fn a_missing_status_is_read_from_the_diagnostic_code() {
    let report = read(&DSN.replace("Status: 5.1.1\r\n", ""));
    assert_eq!(report.verdict, Verdict::Hard);
    assert_eq!(report.status.as_deref(), Some("5.1.1"));
    let bare = DSN
        .replace("Status: 5.1.1\r\n", "")
        .replace("550 5.1.1 <gone", "452 <gone");
    let report = read(&bare);
    assert_eq!(report.verdict, Verdict::Soft);
    assert_eq!(report.status.as_deref(), Some("452"));
}

const ARF: &str = "From: <abusedesk@example.com>\r
Date: Thu, 8 Mar 2005 17:40:36 EDT\r
Subject: FW: Earn money\r
To: <abuse@example.net>\r
MIME-Version: 1.0\r
Message-ID: <arf-1@example.com>\r
Content-Type: multipart/report; report-type=feedback-report;\r
     boundary=\"part1_13d.2e68ed54_boundary\"\r
\r
--part1_13d.2e68ed54_boundary\r
Content-Type: text/plain; charset=\"US-ASCII\"\r
\r
This is an email abuse report for an email message received from IP\r
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.\r
\r
--part1_13d.2e68ed54_boundary\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
User-Agent: SomeGenerator/1.0\r
Version: 1\r
Original-Mail-From: <somespammer@example.net>\r
Original-Rcpt-To: <user@example.com>\r
\r
--part1_13d.2e68ed54_boundary\r
Content-Type: message/rfc822\r
\r
From: <somespammer@example.net>\r
Received: from mailserver.example.net\r
To: <Undisclosed Recipients>\r
Subject: Earn money\r
Message-ID: <8787KJKJ3K4J3K4J3K4J3.mail@example.net>\r
\r
Spam Spam Spam\r
--part1_13d.2e68ed54_boundary--\r
";

#[test]
fn an_arf_abuse_report_is_a_complaint() {
    let report = read(ARF);
    assert_eq!(report.verdict, Verdict::Complaint);
    assert_eq!(report.recipient.as_deref(), Some("user@example.com"));
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("8787KJKJ3K4J3K4J3K4J3.mail@example.net")
    );
    assert_eq!(report.id.as_deref(), Some("arf-1@example.com"));
    assert_eq!(report.delivered_to, ["abuse@example.net"]);
    assert!(!report.legacy);
}

#[test]
fn arf_without_rcpt_to_names_the_returned_to_and_not_spam_is_no_report() {
    let report = read(
        &ARF.replace("Original-Rcpt-To: <user@example.com>\r\n", "")
            .replace(
                "To: <Undisclosed Recipients>",
                "To: Reader <reader@example.org>",
            ),
    );
    assert_eq!(report.recipient.as_deref(), Some("reader@example.org"));
    let report = read(&ARF.replace("Feedback-Type: abuse", "Feedback-Type: not-spam"));
    assert_eq!(report.verdict, Verdict::NotAReport);
}

#[test]
fn auto_replies_are_marked_but_a_dsn_stays_a_dsn() {
    let vacation = "From: jo@example.org\nTo: news@news.example\nSubject: Away\n\
                    Auto-Submitted: auto-replied\nMessage-ID: <v1@example.org>\n\nBack Monday.\n";
    assert_eq!(read(vacation).verdict, Verdict::AutoReply);
    let no = vacation.replace("auto-replied", "no");
    assert_eq!(read(&no).verdict, Verdict::NotAReport);
    let outlook = "From: jo@example.org\nSubject: Automatic reply: Issue 7\n\
                   X-Auto-Response-Suppress: All\n\nI am out.\n";
    assert_eq!(read(outlook).verdict, Verdict::AutoReply);
    assert_eq!(read(DSN).verdict, Verdict::Hard);
}

#[test]
fn a_qmail_failure_notice_is_a_hard_legacy_bounce() {
    let qmail = "Return-Path: <>\n\
Delivered-To: bounces+t1@news.example\n\
From: MAILER-DAEMON@mail.example.net\n\
To: bounces+t1@news.example\n\
Subject: failure notice\n\
\n\
Hi. This is the qmail-send program at mail.example.net.\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\n\
This is a permanent error; I've given up. Sorry it didn't work out.\n\
\n\
<nobody@example.net>:\n\
Sorry, no mailbox here by that name. (#5.1.1)\n\
\n\
--- Below this line is a copy of the message.\n\
\n\
Return-Path: <bounces+t1@news.example>\n\
Message-ID: <issue-7.t1@news.example>\n\
From: news@news.example\n\
To: nobody@example.net\n\
\n\
Hello\n";
    let report = read(qmail);
    assert_eq!(report.verdict, Verdict::Hard);
    assert!(report.legacy);
    assert_eq!(report.recipient.as_deref(), Some("nobody@example.net"));
    assert_eq!(report.status.as_deref(), Some("5.1.1"));
    assert_eq!(
        report.diagnostic.as_deref(),
        Some("Sorry, no mailbox here by that name. (#5.1.1)")
    );
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("issue-7.t1@news.example")
    );
    let no_code = qmail.replace(" (#5.1.1)", "");
    let report = read(&no_code);
    assert_eq!(report.verdict, Verdict::Hard);
    assert_eq!(report.status, None);
}

#[test]
fn ordinary_mail_is_no_report() {
    let report =
        read("From: jo@example.org\nTo: news@news.example\nSubject: Thanks\n\nNice issue.\n");
    assert_eq!(report.verdict, Verdict::NotAReport);
    assert!(!report.legacy);
}
