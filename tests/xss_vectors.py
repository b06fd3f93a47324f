"""A corpus of hostile inputs for the XSS tests (written for this project).

Each vector is something an attacker might type into any text field: raw HTML with
event handlers, ``javascript:``/``data:`` URLs in HTML and in Markdown link syntax,
SVG and MathML, entity- and percent-encoded variants, broken and nested tags, parser
confusion (comments, CDATA, ``</script>`` breakouts) and template injection. The
tests parse every output and assert none of it became executable.
"""

from __future__ import annotations

# A marker no page contains on its own: a vector that evaluated {{ 1234567*9 }} would show it.
TEMPLATE_PRODUCT = "11111103"

RAW_HTML = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<script src=data:text/javascript,alert(1)></script>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x OnErRoR=alert(1)>",
    '<img src="x" onerror="alert(1)"//',
    "<img src=x:alert(1) onerror=eval(src)>",
    "<body onload=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href=javascript:alert(1)><text x=20 y=20>X</text></a></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    '<svg><set attributeName="href" to="javascript:alert(1)"/></svg>',
    "<svg><foreignObject><iframe src=javascript:alert(1)></iframe></foreignObject></svg>",
    '<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">X</maction></math>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math href="javascript:alert(1)">X</math>',
    "<iframe src=javascript:alert(1)></iframe>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<object data=javascript:alert(1)></object>",
    '<embed src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "<a href=javascript:alert(1)>click</a>",
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href="&#106;avascript:alert(1)">click</a>',
    '<a href="java&#x09;script:alert(1)">click</a>',
    '<a href=" &#14; javascript:alert(1)">click</a>',
    '<a href="vbscript:msgbox(1)">click</a>',
    '<a href="data:text/html,<script>alert(1)</script>">click</a>',
    '<a href="#" onclick="alert(1)">click</a>',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<button formaction="javascript:alert(1)">go</button>',
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    '<video><source onerror="alert(1)"></video>',
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<div style="width:expression(alert(1))">x</div>',
    "<style>@import 'javascript:alert(1)';</style>",
    '<link rel=stylesheet href="javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    "<isindex type=image src=1 onerror=alert(1)>",
    "<template><script>alert(1)</script></template>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<xmp><script>alert(1)</script></xmp>",
    "<textarea></textarea><script>alert(1)</script>",
    "<title></title><script>alert(1)</script>",
]

BROKEN_AND_NESTED = [
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<<script>alert(1)//<</script>",
    "<img src=x onerror=alert(1)",
    "<img\nsrc=x\nonerror=alert(1)>",
    "<img\tsrc=x\tonerror=alert(1)>",
    "<img/src=x/onerror=alert(1)>",
    '<img src="x` `<script>alert(1)</script>"` `>',
    '"><script>alert(1)</script>',
    "'><script>alert(1)</script>",
    '" onmouseover="alert(1)',
    "' onmouseover='alert(1)",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "<!--<img src=x onerror=alert(1)>-->",
    "<!-- --!><img src=x onerror=alert(1)>",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<?xml version="1.0"?><script>alert(1)</script>',
    "<p <img src=x onerror=alert(1)>>",
    "<a href='x'<img src=x onerror=alert(1)>>x</a>",
    "<div><p><b><i><u><img src=x onerror=alert(1)></u></i></b></p></div>",
    "<table><td><img src=x onerror=alert(1)></td></table>",
    "<select><option><img src=x onerror=alert(1)></option></select>",
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    "<noembed><img src=x onerror=alert(1)></noembed>",
    "<plaintext><img src=x onerror=alert(1)>",
    "<a\x00href=javascript:alert(1)>x</a>",
    "<scri\x00pt>alert(1)</scri\x00pt>",
]

ENCODED = [
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "&#x3C;img src=x onerror=alert(1)&#x3E;",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "\\x3cscript\\x3ealert(1)\\x3c/script\\x3e",
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",  # fullwidth < and >
    "<scr\u200bipt>alert(1)</scr\u200bipt>",
    "\u202e<script>alert(1)</script>",
    "<img src=x onerror=&#97;&#108;&#101;&#114;&#116;(1)>",
    '<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099'
    '&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="jav&#x0A;ascript:alert(1)">x</a>',
    "+ADw-script+AD4-alert(1)+ADw-/script+AD4-",
    '<IMG SRC="jav&#x0D;ascript:alert(1);">',
]

MARKDOWN = [
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click]( javascript:alert(1) )",
    "[click](<javascript:alert(1)>)",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "![img](javascript:alert(1))",
    '![img](x" onerror="alert(1))',
    '[click](https://example.com" onclick="alert(1))',
    "[click][ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    '<https://example.com/"onmouseover="alert(1)>',
    "```html\n<script>alert(1)</script>\n```",
    "`<script>alert(1)</script>`",
    "> <img src=x onerror=alert(1)>",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "**<img src=x onerror=alert(1)>**",
    "[<img src=x onerror=alert(1)>](https://example.com)",
    "[x](https://example.com 'title\" onmouseover=\"alert(1)')",
]

TEMPLATE_INJECTION = [
    "{{ 1234567*9 }}",
    "{{1234567*9}}",
    "{% for x in range(1) %}{{ 1234567*9 }}{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ config }}{{ request }}{{ self }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "${1234567*9}",
    "#{1234567*9}",
    "<%= 1234567*9 %>",
    "{{constructor.constructor('alert(1)')()}}",
    "{{$on.constructor('alert(1)')()}}",
]

# The Markdown-free texts (headlines, titles, names) must come out as text; the same
# vectors cover them, plus a few that only make sense outside an HTML body.
ATTRIBUTE_AND_JSON = [
    "</script><script type=module>alert(1)</script>",
    '"},"html":"<img src=x onerror=alert(1)>',
    '\\"></script><script>alert(1)</script>',
    "\u2028\u2029<script>alert(1)</script>",
    "]]><script>alert(1)</script><![CDATA[",
]

VECTORS: list[str] = [
    *RAW_HTML,
    *BROKEN_AND_NESTED,
    *ENCODED,
    *MARKDOWN,
    *TEMPLATE_INJECTION,
    *ATTRIBUTE_AND_JSON,
]
