"""Writes corpus.jsonl: realistic prompts and completions with every planted entity labelled.

Run ``python tests/redaction/testdata/make_corpus.py`` to regenerate (seeded, so the file is stable).
Each line is ``{"id", "text", "entities": [{"type", "value"}]}``; ``type`` is a detector name. Texts
without entities and hard negatives (Luhn-invalid cards, bad IBAN check digits, dates, versions,
hashes, UUIDs, order numbers) measure precision. About a fifth of the samples are wrapped as the JSON
of ``gen_ai.input.messages`` (newlines escaped), the form the receiver actually sees.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

rng = random.Random(9)
ALNUM = string.ascii_letters + string.digits
FIRST = ["anna", "jose", "li", "fatima", "olga", "pierre", "kenji", "maria", "tom", "aisha", "lars", "sofia"]
LAST = ["smith", "garcia", "wang", "okafor", "novak", "dubois", "tanaka", "rossi", "muller", "haddad"]
DOMAINS = ["example.com", "acme-corp.io", "mail.example.org", "uni-heidelberg.de", "example.co.uk",
           "startup.ai", "sub.domain.example.net", "gmail.com", "outlook.fr"]


def email() -> str:
    f, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice([f"{f}.{last}", f"{f}{rng.randint(1, 99)}", f"{f[0]}{last}", f"{f}+billing",
                        f"{f}_{last}", f"{last}.{f}-ops", f"{f.upper()}.{last.capitalize()}"])
    return f"{local}@{rng.choice(DOMAINS)}"


def luhn_complete(prefix: str, length: int) -> str:
    digits = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        candidate = digits + check
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return candidate
    raise AssertionError


def card(valid: bool = True) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                                 ("6011", 16), ("65", 16), ("4", 13), ("35", 16), ("62", 19)])
    number = luhn_complete(prefix, length)
    if not valid:
        number = number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)
    style = rng.choice(["plain", "space", "dash"])
    if style == "plain" or length not in (15, 16):
        return number
    groups = [number[:4], number[4:10], number[10:]] if length == 15 else [number[i:i + 4] for i in range(0, 16, 4)]
    return (" " if style == "space" else "-").join(groups)


IBAN_BBAN = {"DE": "n18", "GB": "a4n14", "FR": "n23", "ES": "n20", "NL": "a4n10", "IT": "a1n22", "CH": "n17",
             "BE": "n12", "PL": "n24", "AT": "n16", "IE": "a4n14", "PT": "n21"}


def iban(valid: bool = True) -> str:
    country = rng.choice(sorted(IBAN_BBAN))
    spec = IBAN_BBAN[country]
    if spec.startswith("a"):
        letters, digits = spec[1:].split("n")
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(int(letters)))
        bban += "".join(rng.choice(string.digits) for _ in range(int(digits)))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(int(spec[1:])))
    numeric = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    check = 98 - numeric % 97
    if not valid:
        check = (check + rng.randint(1, 50)) % 97 + 2
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
    return compact


def phone() -> str:
    return rng.choice([
        f"+1 ({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
        f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
        f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
        f"+44 20 {rng.randint(7000, 8999)} {rng.randint(0, 9999):04d}",
        f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
        f"+49 30 {rng.randint(1000000, 99999999)}",
        f"+81 3-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
        f"+14155550{rng.randint(100, 199)}",
        f"0{rng.randint(20, 99)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
        f"{rng.randint(201, 989)}.{rng.randint(200, 999)}.{rng.randint(0, 9999):04d}",
    ])


def ipv4() -> str:
    return rng.choice([f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                       f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                       f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"])


def ipv6() -> str:
    groups = [f"{rng.randint(0, 0xffff):x}" for _ in range(8)]
    return rng.choice(["2001:db8:" + ":".join(groups[2:]), "fe80::" + ":".join(groups[4:]),
                       f"2001:db8::{groups[7]}", ":".join(groups), f"2a00:1450:4001:{groups[3]}::200e"])


def rand(n: int, alphabet: str = ALNUM) -> str:
    while True:
        s = "".join(rng.choice(alphabet) for _ in range(n))
        if any(c.isdigit() for c in s) and any(c.isalpha() for c in s):
            return s


def openai_key() -> str:
    return rng.choice([f"sk-proj-{rand(64, ALNUM + '_-')}", f"sk-{rand(20)}T3BlbkFJ{rand(20)}",
                       f"sk-svcacct-{rand(60, ALNUM + '_-')}", f"sk-{rand(48)}"])


def anthropic_key() -> str:
    return f"sk-ant-api03-{rand(93, ALNUM + '_-')}AA"


def aws_key() -> str:
    return rng.choice(["AKIA", "ASIA"]) + rand(16, string.ascii_uppercase + string.digits)


def github_token() -> str:
    return rng.choice([f"ghp_{rand(36)}", f"gho_{rand(36)}", f"ghs_{rand(36)}", f"github_pat_{rand(22)}_{rand(59)}"])


def google_key() -> str:
    return f"AIza{rand(35, ALNUM + '_-')}"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt() -> str:
    header = b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": str(rng.randint(1, 10**9)), "name": rng.choice(FIRST),
                                 "iat": rng.randint(1.6e9, 1.8e9)}).encode())
    return f"{header}.{payload}.{b64url(rng.randbytes(32))}"


def private_key() -> str:
    kind = rng.choice(["RSA ", "EC ", "", "OPENSSH "])
    body = base64.b64encode(rng.randbytes(rng.choice([120, 240, 400]))).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{lines}\n-----END {kind}PRIVATE KEY-----"


MAKERS = {"email": email, "credit_card": card, "iban": iban, "phone": phone, "ipv4": ipv4, "ipv6": ipv6,
          "openai_key": openai_key, "anthropic_key": anthropic_key, "aws_access_key": aws_key,
          "github_token": github_token, "google_api_key": google_key, "jwt": jwt, "private_key": private_key}

TEMPLATES = {
    "email": ["Please draft a polite reply to {x} saying the invoice is delayed.",
              "Customer wrote from {x}: 'my order never arrived'. Summarise the complaint.",
              "Add {x} to the CC list and rewrite the meeting invite for Thursday.",
              "From: {x}\nSubject: Refund request\n\nHi team, I was charged twice in March."],
    "credit_card": ["My card {x} was declined at checkout, exp 09/27, can you tell me why?",
                    "Classify this support ticket: 'charged twice on card {x} for order #48213'.",
                    "Payment details: card number {x}, CVV 123. Is this a fraud pattern?"],
    "iban": ["Please wire EUR 1,250.00 to IBAN {x} (reference INV-2024-0193).",
             "Extract the bank details from this letter: account holder M. Rossi, IBAN: {x}, BIC DEUTDEFF.",
             "Is {x} a valid IBAN for a German supplier?"],
    "phone": ["Call me back at {x} after 5pm, I'm travelling until Friday.",
              "Summarise the voicemail left by the customer (phone {x}) about the broken heater.",
              "Contact: Dr. Tanaka, tel. {x}, clinic hours 9-17."],
    "ipv4": ["The staging server at {x} returns 502 since the deploy, here are the nginx logs.",
             "Failed password for root from {x} port 52113 ssh2 - is this a brute force attack?",
             "Whitelist {x} in the firewall rules and explain the iptables command."],
    "ipv6": ["Our IPv6 endpoint {x} times out from Frankfurt; what could be wrong?",
             "Parse this log line: client {x} requested /api/v2/orders 403.",
             "Convert the listen directive to use [{x}]:8443."],
    "openai_key": ["Why does my script fail? client = OpenAI(api_key=\"{x}\") raises AuthenticationError.",
                   "export OPENAI_API_KEY={x}\npython app.py -> 401 Unauthorized, help",
                   "I accidentally committed {x} to git, how do I rotate it?"],
    "anthropic_key": ["anthropic.Anthropic(api_key='{x}') gives me a 529 overloaded error, retry policy?",
                      "My .env has ANTHROPIC_API_KEY={x} but the SDK says it is missing."],
    "aws_access_key": ["aws configure set aws_access_key_id {x} then s3 ls fails with AccessDenied.",
                       "Found in logs: AccessKeyId={x}; is this a root or IAM user key?"],
    "github_token": ["git clone https://{x}@github.com/acme/payments.git fails with 403.",
                     "The CI uses GITHUB_TOKEN={x} to push tags; explain the permissions needed."],
    "google_api_key": ["Maps embed stopped working: https://maps.googleapis.com/maps/api/js?key={x}",
                       "gemini = genai.Client(api_key=\"{x}\"); why quota exceeded?"],
    "jwt": ["Decode this token and tell me when it expires: {x}",
            "curl -H 'Authorization: Bearer {x}' https://api.example.com/me returns 401."],
    "private_key": ["Here is the deploy key, why does ssh reject it?\n{x}\nThanks!",
                    "Convert this key to PKCS8 format:\n{x}"],
}

NEGATIVES = [
    "The meeting moved to 2024-03-15 at 14:30; version 1.2.3 of the SDK broke pagination.",
    "Order #4829173 shipped on 12/05/2023, tracking 1Z999AA10123456784 via UPS.",
    "Commit 3f2a9c1b7e4d5f60a1b2c3d4e5f60718293a4b5c introduced the regression in utils.py.",
    "Request id 550e8400-e29b-41d4-a716-446655440000 failed after 3 retries in 1500 ms.",
    "Use sk-learn? No: scikit-learn 1.4.2 with numpy 1.26.4 and python 3.11.8.",
    "We grew from 1500 to 23000 customers between 2019 and 2023, revenue up 35%.",
    "The @mentions in Slack like @channel and @here notify everyone.",
    "Set the timeout to 30000 ms and the pool size to 16 for the 4 worker nodes.",
    "std::vector<int> v; v.push_back(42); std::cout << v[0] << std::endl;",
    "Timestamps 12:30:45 and 23:59:59 are in UTC; see RFC 3339 section 5.6.",
    "ISBN 978-3-16-148410-0 and ISSN 2049-3630 are cited in chapter 7.",
    "The task-management-system-for-small-teams repo has 1200 stars.",
    "Temperatures ranged from -5.5 to 12.25 degrees over 3 days.",
    "Price: $1,299.99 (was $1,499.00), SKU ABC-12345-XL.",
    "Hash sha256:9f86d081884c7d659a2feaf0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 matches.",
    "Coordinates 48.8566, 2.3522 point to Paris; elevation 35 m.",
    "Error code E1234 at line 567 of module_89.py, column 10.",
    "MAC address 00:1A:2B:3C:4D:5E is not an IPv6 address.",
    "Please summarise chapters 1 to 12 of the employee handbook for new joiners.",
    "Version strings like 10.0.19045.3803 and 2.7.18.1 identify builds.",
]
PROSE = [
    "Rewrite the following paragraph in a friendlier tone for our newsletter audience.",
    "You are a helpful assistant that answers questions about our return policy concisely.",
    "Explain the difference between a process and a thread with a short example in Python.",
    "Translate to French: the quarterly report shows a steady increase in recurring revenue.",
    "Write unit tests for a function that merges overlapping intervals, covering edge cases.",
    "List three risks of migrating the billing database during business hours, and mitigations.",
    "Summarise the attached design document in five bullet points for the leadership team.",
]


def sample(i: int) -> dict[str, object]:
    roll = rng.random()
    entities: list[dict[str, str]] = []
    if roll < 0.12:
        text = rng.choice(PROSE) + " " + rng.choice(PROSE)
    elif roll < 0.30:
        text = rng.choice(NEGATIVES)
        if rng.random() < 0.5:  # near misses: Luhn-invalid card, IBAN with a wrong check
            kind = rng.choice(["card", "iban"])
            text += f" Test value {card(valid=False) if kind == 'card' else iban(valid=False)} should stay."
    else:
        parts = [rng.choice(PROSE)]
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            kind = rng.choice(sorted(MAKERS))
            value = MAKERS[kind]()
            parts.append(rng.choice(TEMPLATES[kind]).format(x=value))
            entities.append({"type": kind, "value": value})
        rng.shuffle(parts)
        text = " ".join(parts)
    if rng.random() < 0.2:  # as the receiver sees gen_ai.input.messages: JSON, newlines escaped
        text = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])
        for e in entities:
            e["value"] = json.dumps(e["value"])[1:-1]
    return {"id": i, "text": text, "entities": entities}


def main() -> None:
    out = Path(__file__).with_name("corpus.jsonl")
    with out.open("w") as f:
        for i in range(1500):
            f.write(json.dumps(sample(i)) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
