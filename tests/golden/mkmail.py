#!/usr/bin/env python3
"""mkmail.py - write the golden test messages of tests/golden (one per
defect shape of issue 17). The .eml files are committed; this script says
how they were made (base64, uuencode and ISO-2022-JP bytes computed here).
Run from tests/golden: python3 mkmail.py"""
import base64
import binascii


def w(name, text):
    with open(name, "w", newline="\n") as f:
        f.write(text)


# a small PDF whose length is 1 mod 3: its base64 ends in "=="
pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
while len(pdf) % 3 != 1:
    pdf += b"\n"
b = base64.b64encode(pdf).decode()
assert b.endswith("==")
png = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
pb = base64.b64encode(png).decode()

# 1. encoded words: padded base64 words of one charset in a row
w("subject-padded-words.eml", f"""From: =?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?= Dupont <e.dupont@customer.example>
To: support@msp.example
Subject: =?UTF-8?B?UsOpc2VydmF0aW9uIGTDqWo=?=
 =?UTF-8?B?w6AgZmFpdGUgw6k=?= =?UTF-8?B?IFtJRDoxMjM0XQ==?=
Message-ID: <padded-words@customer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B1"

--B1
Content-Type: text/plain; charset=utf-8

Bonjour.
--B1
Content-Type: application/pdf; name="=?UTF-8?B?ZmFjdHVyZS3DqQ==?= =?UTF-8?B?LnBkZg==?="
Content-Disposition: attachment; filename="=?UTF-8?B?ZmFjdHVyZS3DqQ==?= =?UTF-8?B?LnBkZg==?="
Content-Transfer-Encoding: base64

{b}
--B1--
""")

# 2a. base64 without its final padding
w("base64-no-padding.eml", f"""From: Bob <bob@customer.example>
To: support@msp.example
Subject: invoice attached
Message-ID: <no-padding@customer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B2"

--B2
Content-Type: text/plain; charset=us-ascii

See the PDF.
--B2
Content-Type: application/pdf; name="invoice.pdf"
Content-Disposition: attachment; filename="invoice.pdf"
Content-Transfer-Encoding: base64

{b.rstrip('=')}
--B2--
""")

# 2b. uuencode whose lines lost their trailing spaces
data = bytes(range(256)) + b"\x00" * 45 + b"end of data   \x00\x00\x00"
uu = "begin 644 table.bin\n"
for i in range(0, len(data), 45):
    line = binascii.b2a_uu(data[i:i + 45]).decode().rstrip("\n")
    uu += line.rstrip(" ") + "\n"
uu += "`\nend\n"
assert any(0 < len(l) < 61 for l in uu.split("\n")[1:-4])
w("uuencode-stripped.eml", f"""From: Old Client <old@customer.example>
To: support@msp.example
Subject: table
Message-ID: <uu-stripped@customer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B3"

--B3
Content-Type: text/plain

The table is attached.
--B3
Content-Type: application/octet-stream; name="table.bin"
Content-Disposition: attachment; filename="table.bin"
Content-Transfer-Encoding: x-uuencode

{uu}--B3--
""")

# 2c. damaged beyond repair: a lone base64 digit; cut short (size= says more)
w("base64-damaged.eml", f"""From: Carol <carol@customer.example>
To: support@msp.example
Subject: damaged files
Message-ID: <damaged@customer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B4"

--B4
Content-Type: text/plain

Two broken files and a good one.
--B4
Content-Type: application/pdf; name="lone-digit.pdf"
Content-Disposition: attachment; filename="lone-digit.pdf"
Content-Transfer-Encoding: base64

{b.rstrip('=')[:-1]}
--B4
Content-Type: application/pdf; name="cut-short.pdf"
Content-Disposition: attachment; filename="cut-short.pdf"; size={len(pdf)}
Content-Transfer-Encoding: base64

{b[:len(b) // 4 * 4 - 8]}
--B4
Content-Type: application/pdf; name="good.pdf"
Content-Disposition: attachment; filename="good.pdf"; size={len(pdf)}
Content-Transfer-Encoding: base64

{b}
--B4--
""")

# 3a. Apple Mail: the HTML side of the alternative is a mixed
w("apple-nested-html.eml", f"""From: Dana <dana@customer.example>
To: support@msp.example
Subject: screenshot of the error
Message-ID: <apple-nested@customer.example>
MIME-Version: 1.0 (Mac OS X Mail 16.0)
Content-Type: multipart/alternative; boundary="Apple-Mail-A"

--Apple-Mail-A
Content-Transfer-Encoding: 7bit
Content-Type: text/plain; charset=us-ascii

Here is the error:

After the picture.
--Apple-Mail-A
Content-Type: multipart/mixed; boundary="Apple-Mail-M"

--Apple-Mail-M
Content-Transfer-Encoding: 7bit
Content-Type: text/html; charset=us-ascii

<html><body><div>Here is the error:</div><div><br></div>
--Apple-Mail-M
Content-Disposition: inline; filename=screenshot.png
Content-Type: image/png; x-unix-mode=0644; name="screenshot.png"
Content-Transfer-Encoding: base64

{pb}
--Apple-Mail-M
Content-Transfer-Encoding: 7bit
Content-Type: text/html; charset=us-ascii

<div><br></div><div>After the picture.</div></body></html>
--Apple-Mail-M--

--Apple-Mail-A--
""")

# 3b. the HTML side is a related (HTML + cid: image)
w("alternative-related.eml", f"""From: Eve <eve@customer.example>
To: support@msp.example
Subject: logo inline
Message-ID: <alt-related@customer.example>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/plain; charset=utf-8

Logo below.
--ALT
Content-Type: multipart/related; boundary="REL"; type="text/html"

--REL
Content-Type: text/html; charset=utf-8

<p>Logo below.</p><img src="cid:logo@x">
--REL
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

{pb}
--REL--
--ALT--
""")

# 4a. more parts than the limit (200)
parts = ""
for i in range(205):
    parts += f"""--MANY
Content-Type: text/plain; name="file{i:03d}.txt"
Content-Disposition: attachment; filename="file{i:03d}.txt"

{i}
"""
w("many-parts.eml", f"""From: Frank <frank@customer.example>
To: support@msp.example
Subject: all the logs
Message-ID: <many-parts@customer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="MANY"

--MANY
Content-Type: text/plain

205 files attached.
{parts}--MANY--
""")

# 4b. parts without names: the extension comes from the type
w("generated-names.eml", f"""From: Hank <hank@customer.example>
To: support@msp.example
Subject: parts without names
Message-ID: <gen-names@customer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="GN"

--GN
Content-Type: text/plain

Files without names.
--GN
Content-Type: image/png
Content-Transfer-Encoding: base64

{pb}
--GN
Content-Type: text/html

<p>an HTML file</p>
--GN
Content-Type: application/pdf
Content-Transfer-Encoding: base64

{b}
--GN
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAEC
--GN--
""")

# 5a. no blank line between the headers and the body
w("no-blank-line.eml", f"""From: Gina <gina@customer.example>
To: support@msp.example
Subject: no blank line after the headers
Message-ID: <no-blank@customer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="NB"
--NB
Content-Type: text/plain; charset=us-ascii

The body text.
--NB
Content-Type: application/pdf; name="form.pdf"
Content-Transfer-Encoding: base64

{b}
--NB--
""")

# 5b. ISO-2022-JP with an NEC row-13 character (No. sign, 0x2D62)
def jis_with_numero(text, tail):
    """TEXT in ISO-2022-JP, then the No. sign in the same JIS X 0208 run,
    then ASCII TAIL."""
    enc = text.encode("iso-2022-jp")
    assert enc.endswith(b"\x1b(B")
    return enc[:-3] + b"\x2d\x62\x1b(B" + tail


subj = base64.b64encode(jis_with_numero("問い合わせ", b"5")).decode()
name = base64.b64encode("山田".encode("iso-2022-jp")).decode()
with open("iso2022jp-nec.eml", "wb") as f:
    f.write(f"""From: =?ISO-2022-JP?B?{name}?= <yamada@customer.example>
To: support@msp.example
Subject: =?ISO-2022-JP?B?{subj}?=
Message-ID: <iso2022jp-nec@customer.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-2022-JP
Content-Transfer-Encoding: 7bit

""".encode() + jis_with_numero("番号", b" 1234\n"))

# 5c. a folded subject (blank before the fold, tabs)
w("folded-subject.eml", """From: "Doe, Jane" <jane@customer.example>
To: support@msp.example
Subject: a long subject line that the sender's mail client folded 
 onto a second line\tand
\ta third
Message-ID: <folded@customer.example>
MIME-Version: 1.0
Content-Type: text/plain

Body.
""")

# 6. read receipt (MDN) and abuse feedback report (ARF)
w("read-receipt.eml", """From: Ivan <ivan@customer.example>
To: agent@msp.example
Subject: Read: ticket 1234
Message-ID: <mdn@customer.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary="MDN"

--MDN
Content-Type: text/plain

Your message was read.
--MDN
Content-Type: message/disposition-notification

Reporting-UA: mail.customer.example; Outlook
Final-Recipient: rfc822;ivan@customer.example
Original-Message-ID: <orig@msp.example>
Disposition: manual-action/MDN-sent-manually; displayed
--MDN--
""")

w("feedback-report.eml", """From: abuse@isp.example
To: support@msp.example
Subject: FW: Spam report
Message-ID: <arf@isp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"

--ARF
Content-Type: text/plain

This is an email abuse report.
--ARF
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ISP-FBL/1.0
Version: 1
--ARF
Content-Type: text/rfc822-headers

From: someone@msp.example
Subject: newsletter
--ARF--
""")
