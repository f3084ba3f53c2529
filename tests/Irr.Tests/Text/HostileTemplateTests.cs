using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Irr.Tests.Cli;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// A chat template is an untrusted program (issue 24): hostile templates, made by a seeded generator (the issue's cases and
/// the variants of each kind: nesting in the parser and in evaluation, runaway loops, huge strings and lists, 64-bit
/// integer overflow), end in one clean <see cref="IrrException"/> that names the limit, never in a stack overflow, an
/// out-of-memory error or a hang; what real jinja2 does with the same templates is in tests/fixtures/jinja/limits.json
/// (made by make_limits.py); the issue's cases also run in a real <c>irr chat-format</c> process under 1 GB and 30 CPU seconds.
/// </summary>
public class HostileTemplateTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Depth = "IRR_MAX_TEMPLATE_DEPTH", Steps = "IRR_MAX_TEMPLATE_STEPS", Output = "IRR_MAX_TEMPLATE_OUTPUT", Items = "IRR_MAX_TEMPLATE_ITEMS";
    private const string Overflow = "integer overflow";

    private static string Render(string template) =>
        ChatTemplate.Parse(template).Render([new ChatMessage("user", "hi")], addGenerationPrompt: true);

    /// <summary>Asserts the template fails with one clean line that names one of <paramref name="expected"/>.</summary>
    private static void AssertRefused(string kind, string template, params string[] expected)
    {
        var e = Record.Exception(() => Render(template));
        string shown = template.Length <= 160 ? template : template[..160] + "…";
        Assert.True(e is IrrException, $"{kind}: {shown} gave {(e is null ? "no error" : e.GetType().Name + ": " + e.Message)}");
        string m = e!.Message;
        Assert.True(expected.Any(x => m.Contains(x, StringComparison.Ordinal)), $"{kind}: {shown}: '{m}' names none of {string.Join(", ", expected)}");
        Assert.StartsWith("chat template", m);
        Assert.DoesNotContain('\n', m);
        IrrProcess.AssertNoControlCharacters(m);
    }

    private static string Rep(string s, int n) => new StringBuilder(s.Length * n).Insert(0, s, n).ToString();

    /// <summary>Puts an expression or a block inside one of the contexts a template has: top level, a loop, an if, a macro, a set block.</summary>
    private static string Wrap(Random r, string body) => r.Next(5) switch
    {
        0 => body,
        1 => "{% for w in messages %}" + body + "{% endfor %}",
        2 => "{% if messages %}" + body + "{% endif %}",
        3 => "{% macro wrapped() %}" + body + "{% endmacro %}{{ wrapped() }}",
        _ => "{% set captured %}" + body + "{% endset %}{{ captured }}",
    };

    /// <summary><c>{{ OPEN…OPEN INNER CLOSE…CLOSE }}</c>, 1,001 to <paramref name="max"/> deep (balanced: the lexer matches brackets to find the end of the tag).</summary>
    private static (string Template, string[] Expected) Balanced(Random r, string open, string inner, string close, int max)
    {
        int n = r.Next(1001, max);
        return ("{{ " + Rep(open, n) + inner + Rep(close, n) + " }}", [Depth]);
    }

    private static readonly Func<Random, (string Template, string[] Expected)>[] Nesting =
    [
        // The parser: every construct that nests, far beyond the limit (the issue: 50,000 parentheses, 5,000 ifs).
        r => Balanced(r, "(", "1", ")", 60000),
        r => Balanced(r, "[", "", "]", 60000),
        r => Balanced(r, "{'a': ", "1", "}", 20000),
        r => Balanced(r, "f(", "", ")", 40000),
        r => Balanced(r, "x[", "0", "]", 40000),
        r => Balanced(r, "x|default(", "1", ")", 20000),
        r => ("{{ " + Rep("1 if x else ", r.Next(1001, 20000)) + "2 }}", [Depth]),
        r => ("{{ x is eq " + Balanced(r, "(", "1", ")", 40000).Template[3..], [Depth]),
        r => (Rep("{% if true %}", r.Next(1001, 20000)) + "x" + Rep("{% endif %}", 2), [Depth]),
        r => (Rep("{% for i in [1] %}", r.Next(1001, 20000)) + "x", [Depth]),
        r => (Rep("{% set s %}", r.Next(1001, 20000)) + "x", [Depth]),
        r => (Rep("{% generation %}", r.Next(1001, 20000)) + "x", [Depth]),
        r => (string.Concat(Enumerable.Range(0, r.Next(1001, 5000)).Select(i => $"{{% macro m{i}() %}}")) + "x", [Depth]),
        // Evaluation: chains the parser reads in a loop but that nest as expressions.
        r => ("{{ " + Rep(r.Next(3) switch { 0 => "not ", 1 => "- ", _ => "+ " }, r.Next(1001, 100000)) + "1 }}", [Depth]),
        r => ("{{ 1" + Rep(" " + new[] { "+", "-", "*", "~", "and", "or", "//", "**", "%" }[r.Next(9)] + " 1", r.Next(1001, 100000)) + " }}", [Depth]),
        r => ("{{ 'a'" + Rep(new[] { "|trim", "|lower", "|string", "|default('b')", " is string" }[r.Next(5)], r.Next(1001, 50000)) + " }}", [Depth]),
        r => ("{{ ['a']" + "|map(" + string.Join(", ", Enumerable.Repeat("'map'", r.Next(1001, 50000))) + ") }}", [Depth]),
        r => ("{{ messages" + Rep(new[] { ".a", "[0]", "()", "['k']", "[0:1]" }[r.Next(5)], r.Next(1001, 100000)) + " }}", [Depth]),
        // Macros that recurse: directly, mutually, through a filter, a loop, a default argument (the issue's case).
        r => (r.Next(5) switch
        {
            0 => "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            1 => "{% macro f() %}{{ g() }}{% endmacro %}{% macro g() %}{{ f() }}{% endmacro %}{{ f() }}",
            2 => "{% macro f(s) %}{{ f(s ~ 'x')|trim }}{% endmacro %}{{ f('') }}",
            3 => "{% macro f() %}{% for m in messages %}{% if true %}{{ f() }}{% endif %}{% endfor %}{% endmacro %}{{ f() }}",
            _ => "{% macro f(n=0) %}{% set x %}{{ f() }}{% endset %}{{ x }}{% endmacro %}{{ f() }}",
        }, [Depth]),
        // Data a template nests without end, then prints, serialises, compares or sorts.
        r =>
        {
            string wrap = r.Next(3) switch { 0 => "[ns.x]", 1 => "{'k': ns.x}", _ => "(ns.x, 1)" };
            string use = new[] { "{{ ns.x }}", "{{ ns.x|tojson }}", "{{ ns.x|tojson(indent=1) }}", "{{ ns.x == ns.x }}", "{{ [ns.x, ns.x]|unique|length }}", "{{ ns.x|string|length }}", "{{ ns.x in [ns.x] }}" }[r.Next(7)];
            return ($"{{% set ns = namespace(x=1) %}}{{% for i in range({r.Next(1001, 5000)}) %}}{{% set ns.x = {wrap} %}}{{% endfor %}}{use}", [Depth]);
        },
    ];

    private static readonly Func<Random, (string Template, string[] Expected)>[] Work =
    [
        // Runaway loops (the issue: three nested range(10**7)); any body, nested three or four deep.
        r =>
        {
            int depth = r.Next(3, 5), n = depth == 3 ? r.Next(500, 2000) : r.Next(150, 400);
            string body = new[] { "", "{{ a }}", "{% if a %}{% endif %}", "{% set x = a %}", "{% for m in messages %}{% endfor %}" }[r.Next(5)];
            var sb = new StringBuilder();
            for (int i = 0; i < depth; i++) sb.Append($"{{% for a in range({n}) %}}");
            sb.Append(body);
            for (int i = 0; i < depth; i++) sb.Append("{% endfor %}");
            return (sb.ToString(), [Steps, Output]);
        },
        r => ("{% macro f() %}{% for i in range(1000) %}{% endfor %}{% endmacro %}{% for i in range(" + r.Next(100000, 1000000) + ") %}{{ f() }}{% endfor %}", [Steps]),
        r => ("{{ range(" + r.Next(100000, 1000000) + ")|list|unique|length }}", [Steps]),
        r => ("{% for i in range(100000) %}{{ " + r.Next(1000, 1000000) + " in range(1000000) }}{% endfor %}", [Steps]),
        r => ("{% set s = 'a' * " + r.Next(5000000, 60000000) + " %}{% for i in range(1000000) %}{{ 'b' in s }}{{ s|length }}{% endfor %}", [Steps]),
    ];

    /// <summary>Templates that make a string or list beyond the limits in one operation from a small input (a count, a width, case mapping, escapes).</summary>
    private static readonly string[] OneStepGrowth =
    [
        "{{ ('a' * 10000000).replace('', 'xxxxxxxxxx') }}",
        "{{ ('\\n' * 1000000)|indent(100, true, true) }}",
        "{{ ('\\n' * 1000000)|indent(9223372036854775807, true, true) }}",
        "{{ [[[[1]]]]|tojson(indent=100000000) }}",
        "{{ [[[[1]]]]|tojson(indent=9223372036854775807) }}",
        "{{ ['a' * 10000000] * 100 }}",
        "{{ (['a' * 10000000] * 100)|join }}",
        "{{ ('a ' * 5000000).split()|length }}",
        "{{ ('a\\n' * 3000000).splitlines()|length }}",
        "{{ ('ab' * 3000000)|list|length }}",
        "{{ ('ß' * 34000000)|upper|length }}",
        "{{ ('\\u0390' * 30000000)|upper|length }}",
        "{{ ('\\u0130' * 40000000)|lower|length }}",
        "{{ ('\\u0390 ' * 20000000)|title|length }}",
        "{{ ('\\u00e9' * 20000000)|tojson(ensure_ascii=true)|length }}",
        "{{ '%s%s%s' % ('a' * 30000000, 'b' * 30000000, 'c' * 30000000) }}",
        "{{ ('a' * 40000000).join(['x', 'y', 'z']) }}",
    ];

    public static TheoryData<int> OneStepGrowthCases => [.. Enumerable.Range(0, OneStepGrowth.Length)];

    [Theory]
    [MemberData(nameof(OneStepGrowthCases))]
    public void OneOperationCannotGrowPastTheLimits(int i) => AssertRefused("one step", OneStepGrowth[i], Output, Items);

    private static readonly Func<Random, (string Template, string[] Expected)>[] Size =
    [
        // Repetition (the issue: 'a' * 10**10, 'abcd' * 600000000), either side, strings, lists, tuples.
        r =>
        {
            string n = r.Next(3) switch { 0 => "10**10", 1 => "600000000", _ => r.NextInt64(70_000_000, long.MaxValue).ToString(CultureInfo.InvariantCulture) };
            return r.Next(6) switch
            {
                0 => ($"{{{{ 'abcd' * {n} }}}}", [Output]),
                1 => ($"{{{{ {n} * 'a' }}}}", [Output]),
                2 => ($"{{{{ [1, 2] * {n} }}}}", [Items]),
                3 => ($"{{{{ {n} * (1,) }}}}", [Items]),
                4 => ($"{{{{ range({n}) }}}}", [Items]),
                _ => ($"{{% for a in range({n}) %}}{{% for b in range({n}) %}}{{% for c in range({n}) %}}{{% endfor %}}{{% endfor %}}{{% endfor %}}", [Items]),
            };
        },
        // Growth by doubling, through every operation that makes a longer string or list.
        r =>
        {
            (string step, string expected) = new[]
            {
                ("ns.s ~ ns.s", Output), ("ns.s + ns.s", Output), ("[ns.s, ns.s]|join", Output), ("[ns.s, ns.s]|join(ns.s)", Output),
                ("ns.s.replace('a', 'aaa')", Output), ("'%s%s' % (ns.s, ns.s)", Output), ("ns.s * 2", Output), ("('\\n' ~ ns.s)|indent(ns.s)", Output),
                ("ns.s.join([ns.s, ns.s])", Output), ("ns.s.replace('', 'b')", Output), ("[ns.s, ns.s]|string", Output),
                ("(ns.s ~ '\\n' ~ ns.s)|indent(3, true)", Output), ("ns.s|tojson|tojson", Output),
            }[r.Next(13)];
            return ($"{{% set ns = namespace(s='ab') %}}{{% for i in range(100) %}}{{% set ns.s = {step} %}}{{% endfor %}}{{{{ ns.s|length }}}}", [expected, Steps]);
        },
        r => ($"{{% set ns = namespace(l=[1]) %}}{{% for i in range(100) %}}{{% set ns.l = ns.l {(r.Next(2) == 0 ? "+ ns.l" : "* 2")} %}}{{% endfor %}}", [Items]),
        // Growth in one step from a small input.
        r => (OneStepGrowth[r.Next(OneStepGrowth.Length)], [Output, Items]),
        // The rendered prompt itself.
        r => ("{% set s = 'x' * " + r.Next(1000, 60000) + " %}{% for i in range(1000000) %}{{ s }}{% endfor %}", [Output]),
    ];

    private static readonly Func<Random, (string Template, string[] Expected)>[] Integers =
    [
        r =>
        {
            long big = long.MaxValue - r.Next(0, 3);
            string e = r.Next(12) switch
            {
                0 => $"{big} + {r.Next(10, 1000)}",
                1 => $"-{big} - {r.Next(10, 1000)}",
                2 => $"{r.NextInt64(3037000500, long.MaxValue)} * {r.Next(2, 1000000)}",
                3 => $"{r.Next(2, 100)} ** {r.NextInt64(64, long.MaxValue)}",
                4 => $"(-{r.Next(2, 100)}) ** {r.NextInt64(64, 1L << 62)}",
                5 => "-(-9223372036854775807 - 1)",
                6 => "(-9223372036854775807 - 1)|abs",
                7 => "(-9223372036854775807 - 1) // -1",
                8 => $"{r.Next(19, 300)}e{r.Next(18, 300)}|int",
                9 => $"'{Rep("9", r.Next(20, 100))}'|int",
                10 => "'%d' % 1e30",
                _ => $"[1, 2]|sum(start={big})",
            };
            return ("{{ " + e + " }}", [Overflow]);
        },
    ];

    public static TheoryData<int> Seeds => [1, 2, 3, 4, 5, 6];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void GeneratedHostileTemplatesEndInOneCleanError(int seed)
    {
        var r = new Random(seed);
        var kinds = new (string Name, Func<Random, (string, string[])>[] Makers, int Count)[]
        {
            ("nesting", Nesting, 10), ("work", Work, 1), ("size", Size, 6), ("integers", Integers, 6),
        };
        foreach (var (name, makers, count) in kinds)
            for (int i = 0; i < count; i++)
            {
                var (template, expected) = makers[r.Next(makers.Length)](r);
                AssertRefused(name, Wrap(r, template), expected);
            }
    }

    [Fact]
    public void EveryKindOfEachGeneratorIsCovered()
    {
        // Each maker once, with a fixed seed, so that no variant is left to chance.
        var r = new Random(7);
        foreach (var makers in (Func<Random, (string, string[])>[][])[Nesting, Size, Integers])
            foreach (var make in makers)
            {
                var (template, expected) = make(r);
                AssertRefused("each", template, expected);
            }
    }

    public static TheoryData<int> WorkKinds => [.. Enumerable.Range(0, Work.Length)];

    [Theory]
    [MemberData(nameof(WorkKinds))]
    public void RunawayLoopsEndByTheStepBudget(int kind)
    {
        var (template, expected) = Work[kind](new Random(8 + kind));
        AssertRefused("work", template, expected);
    }

    [Fact]
    public void DeeplyNestedVariablesAreRefusedByTheDepthLimit()
    {
        // tools (or any variable) nested past the limit: JSON read with a depth allowance above ours.
        int n = 3000;
        using var doc = JsonDocument.Parse(Rep("[", n) + Rep("]", n), new JsonDocumentOptions { MaxDepth = n + 1 });
        var e = Assert.Throws<IrrException>(() => ChatTemplate.Parse("{{ tools|length }}").Render(new Dictionary<string, JsonElement> { ["tools"] = doc.RootElement }));
        Assert.Contains(Depth, e.Message);
        Assert.StartsWith("chat template's variables", e.Message);
    }

    [Fact]
    public void TheLimitMessageNamesTheTemplateTheLineAndTheVariable()
    {
        var e = Assert.Throws<IrrException>(() => Render("a\nb\n{{ 'a' * 10**10 }}"));
        Assert.Equal("chat template line 3: a string of 10,000,000,000 characters exceeds the limit of 67,108,864 (raise it with IRR_MAX_TEMPLATE_OUTPUT=…)", e.Message);
        e = Assert.Throws<IrrException>(() => Render("{{ 2 ** 64 }}"));
        Assert.Equal("chat template line 1: integer overflow: 2 ** 64 does not fit in 64 bits (the templates' integers are 64-bit)", e.Message);
        e = Assert.Throws<IrrException>(() => Render("\n" + Rep("{% if true %}\n", 2000)));
        Assert.Equal("chat template line 1002: nesting depth (parentheses, blocks, expressions, macro calls or nested data) exceeds the limit of 1,000 (raise it with IRR_MAX_TEMPLATE_DEPTH=…)", e.Message);
    }

    [Theory]
    // raise_exception's text, parse errors quoting a string or a character, and runtime errors quoting names or keys: one line.
    [InlineData("{{ raise_exception('bad\\n\\x1b[31merror: forged\\x07') }}", "chat template line 1: the template raised an error: bad\\n\\x1b[31merror: forged\\x07")]
    [InlineData("{{ 1 'a\\nb\\x1b' }}", "chat template line 1: unexpected string 'a\\nb\\x1b'")]
    [InlineData("{{ \u0007 }}", "chat template line 1: unexpected character '\\x07'")]
    [InlineData("{{ ['a']|map('tri\\x1bm\\u2028') }}", "chat template line 1: unsupported filter 'tri\\x1bm\\u2028'")]
    [InlineData("{{ [1]|select('od\\rd') }}", "chat template line 1: unsupported test 'od\\rd'")]
    [InlineData("a\n{{ strftime_now('%\\x9b') }}", "chat template line 2: strftime_now: unsupported format code '%\\x9b'")]
    public void ErrorMessagesEscapeControlCharacters(string template, string expected)
    {
        var e = Assert.ThrowsAny<IrrException>(() => Render(template));
        Assert.Equal(expected, e.Message);
        IrrProcess.AssertNoControlCharacters(e.Message);
    }

    [Fact]
    public void RaisedMessageKeepsTheTextAsPassed()
    {
        var e = Assert.Throws<TemplateRaisedException>(() => Render("{{ raise_exception('a\\nb') }}"));
        Assert.Equal("a\nb", e.RaisedMessage);
        Assert.EndsWith("a\\nb", e.Message);
    }

    /// <summary>tests/fixtures/jinja/limits.json: what jinja2 renders is rendered alike, unless it is an integer beyond 64 bits (refused by name); what hits jinja2's recursion limit hits ours.</summary>
    [Fact]
    public void AsJinja2WithinTheLimitsAndRefusedWhereJinja2Recurses()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Local("jinja/limits.json")));
        int checkedEntries = 0;
        foreach (var entry in doc.RootElement.GetProperty("entries").EnumerateArray())
        {
            string template = entry.GetProperty("template").GetString()!;
            string shown = template.Length <= 80 ? template : template[..80] + "…";
            if (entry.TryGetProperty("error", out var error))
            {
                Assert.Equal("RecursionError", error.GetString());
                AssertRefused("jinja2 RecursionError", template, Depth);
            }
            else
            {
                string expected = entry.GetProperty("output").GetString()!;
                bool beyond64 = Regex.Matches(expected, @"-?\d{19,}").Any(m => BigInteger.Parse(m.Value, CultureInfo.InvariantCulture) is var v && (v > long.MaxValue || v < long.MinValue));
                if (beyond64) AssertRefused($"jinja2 gives {expected}", template, Overflow);
                else Assert.True(expected == Render(template), $"{shown}: jinja2 gives {expected}, irr {Render(template)}");
            }
            checkedEntries++;
        }
        Assert.True(checkedEntries > 50);
    }

    [Fact]
    public void RealTemplatesOverALongConversationNeedAFractionOfTheBudget()
    {
        // 1,000 messages through each real template of the fixtures: about 150 steps a message, the budget is 50,000,000.
        var messages = Enumerable.Range(0, 1000).Select(i => new ChatMessage(i % 2 == 0 ? "user" : "assistant", $"Message {i} of a long conversation, with some text in it.")).ToList();
        var tokens = new Dictionary<string, string?> { ["bos_token"] = "<s>", ["eos_token"] = "</s>" };
        foreach (string file in Directory.GetFiles(Fixtures.Local("templates"), "*.jinja"))
        {
            var t = ChatTemplate.Parse(File.ReadAllText(file));
            string prompt = t.Render(messages, addGenerationPrompt: true, tokens);
            Assert.Contains("Message 999 of a long conversation", prompt);
            output.WriteLine($"{Path.GetFileName(file)}: {t.LastSteps} steps for 1,000 messages");
            Assert.True(t.LastSteps is > 1000 and < 250_000, $"{Path.GetFileName(file)}: {t.LastSteps} steps");
        }
    }

    [Fact]
    public void RealTemplatesRenderA16MBPrompt()
    {
        // The largest data record (16 MB) as one user message, through the real templates: within every limit.
        string content = Rep("word and more words. ", 16_000_000 / 21);
        var tokens = new Dictionary<string, string?> { ["bos_token"] = "<s>", ["eos_token"] = "</s>" };
        foreach (string file in Directory.GetFiles(Fixtures.Local("templates"), "*.jinja"))
        {
            var t = ChatTemplate.Parse(File.ReadAllText(file));
            string prompt = t.Render([new ChatMessage("user", content)], addGenerationPrompt: true, tokens);
            output.WriteLine($"{Path.GetFileName(file)}: {t.LastSteps} steps for a 16 MB prompt");
            Assert.Contains(content.TrimEnd(), prompt);
            Assert.True(t.LastSteps < 25_000_000, $"{Path.GetFileName(file)}: {t.LastSteps} steps");
        }
    }

    // ---- the issue's cases in a real process: irr chat-format under 1 GB of memory and 30 CPU seconds

    public static TheoryData<string, string> ProcessCases => new()
    {
        { "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", Depth },
        { "{{ " + Rep("(", 50000) + "1" + Rep(")", 50000) + " }}", Depth },
        { Rep("{% if true %}", 5000) + "x" + Rep("{% endif %}", 5000), Depth },
        { "{% set ns = namespace(x=1) %}{% for i in range(3000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|tojson }}", Depth },
        { "{% for a in range(10**7) %}{% for b in range(10**7) %}{% for c in range(10**7) %}{% endfor %}{% endfor %}{% endfor %}", Items },
        { "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{{ c }}{% endfor %}{% endfor %}{% endfor %}", Steps },
        { "{{ 'a' * 10**10 }}", Output },
        { "{{ 'abcd' * 600000000 }}", Output },
        { "{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "exceeds the limit of" },
        { "{{ 2 ** 64 }}", Overflow },
        { "{{ raise_exception('\\x1b[2J\\nerror: forged\\x07') }}", "the template raised an error: \\x1b[2J\\nerror: forged\\x07" },
    };

    [Theory]
    [MemberData(nameof(ProcessCases))]
    public void ChatFormatEndsInOneLineWithinTheProcessLimits(string template, string mention)
    {
        using var dir = new TinyModelDir(new JsonObject { ["chat_template"] = template, ["eos_token"] = "</s>" });
        var r = IrrProcess.Run(["chat-format", "--model", dir.Path, "--user", "hi"]);
        IrrProcess.AssertOneLineError(r, "chat template (tokenizer_config.json) line 1", mention);
        Assert.Equal("", r.Out);
    }

    [Fact]
    public void EachLimitIsRaisedOrLoweredByItsVariable()
    {
        // 1,500 nested ifs: beyond the default depth, rendered with IRR_MAX_TEMPLATE_DEPTH=3000.
        using var deep = new TinyModelDir(new JsonObject { ["chat_template"] = Rep("{% if true %}", 1500) + "deep" + Rep("{% endif %}", 1500), ["eos_token"] = "</s>" });
        var r = IrrProcess.Run(["chat-format", "--model", deep.Path, "--user", "hi"], env: new Dictionary<string, string> { ["IRR_MAX_TEMPLATE_DEPTH"] = "3000" });
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal("deep", r.Out.TrimEnd());
        // A prompt of a few characters, refused with IRR_MAX_TEMPLATE_OUTPUT=5.
        using var small = new TinyModelDir();
        r = IrrProcess.Run(["chat-format", "--model", small.Path, "--user", "hello world"], env: new Dictionary<string, string> { ["IRR_MAX_TEMPLATE_OUTPUT"] = "5" });
        IrrProcess.AssertOneLineError(r, "chat template (tokenizer_config.json) line 1: the rendered text of", "exceeds the limit of 5 (raise it with IRR_MAX_TEMPLATE_OUTPUT=…)");
    }
}
