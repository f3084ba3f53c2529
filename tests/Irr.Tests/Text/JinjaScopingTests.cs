using System.Text.Json;
using Irr;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// jinja2's scoping (loops, if, macros, namespace, set blocks) and common filters and tests, against a corpus
/// rendered by real jinja2 set up as transformers sets it up (tests/fixtures/jinja/scoping.json, made by
/// make_scoping.py). Every entry renders exactly as jinja2 does, or, for a construct the engine does not
/// support, fails with a clean <see cref="IrrException"/>; it never renders something different.
/// </summary>
public class JinjaScopingTests
{
    private static readonly ChatMessage[] SystemUser = [new("system", "Be brief."), new("user", "hi")];

    /// <summary>Constructs the engine refuses; jinja2 renders them, irr must raise an error naming them.</summary>
    private static readonly HashSet<string> Refused =
    [
        "refused-recursive-loop", "refused-call-block", "refused-filter-block", "refused-with-block", "refused-macro-varargs",
    ];

    [Fact]
    public void SetInsideIfInsideLoopIsLocalToTheIteration()
    {
        var t = ChatTemplate.Parse("{% for m in messages %}{% if m.role == \"system\" %}{% set r = m.content %}{% endif %}[{{ m.role }}:{{ r }}]{% endfor %}");
        Assert.Equal("[system:Be brief.][user:]", t.Render(SystemUser, addGenerationPrompt: false));
    }

    [Fact]
    public void SetInsideLoopDoesNotCarryToTheNextIteration()
    {
        var t = ChatTemplate.Parse("{% set count = 0 %}{% for m in messages %}{% set count = count + 1 %}{{ count }}{% endfor %}");
        Assert.Equal("11", t.Render(SystemUser, addGenerationPrompt: false));
    }

    [Fact]
    public void NamespaceCarriesStateOutOfALoop()
    {
        var t = ChatTemplate.Parse("{% set ns = namespace(x=0) %}{% for m in messages %}{% set ns.x = ns.x + 1 %}{% endfor %}{{ ns.x }}");
        Assert.Equal("2", t.Render(SystemUser, addGenerationPrompt: false));
    }

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var e in Corpus().Values) data.Add(e.GetProperty("name").GetString()!);
        return data;
    }

    private static Dictionary<string, JsonElement> Corpus()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Local("jinja/scoping.json")));
        return doc.RootElement.GetProperty("entries").EnumerateArray()
            .ToDictionary(e => e.GetProperty("name").GetString()!, e => e.Clone(), StringComparer.Ordinal);
    }

    [Fact]
    public void CorpusWasMadeByRealJinja2()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Local("jinja/scoping.json")));
        Assert.StartsWith("3.", doc.RootElement.GetProperty("jinja2_version").GetString());
        Assert.True(doc.RootElement.GetProperty("entries").GetArrayLength() >= 90);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void RendersAsJinja2Does(string name)
    {
        var entry = Corpus()[name];
        string template = entry.GetProperty("template").GetString()!;
        var vars = entry.GetProperty("context").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone(), StringComparer.Ordinal);
        string kind = name[..name.IndexOf('#')];

        if (Refused.Contains(kind))
        {
            var refused = Assert.ThrowsAny<IrrException>(() => ChatTemplate.Parse(template).Render(vars));
            Assert.Contains("unsupported", refused.Message, StringComparison.Ordinal);
            return;
        }
        if (entry.TryGetProperty("output", out var output))
        {
            Assert.Equal(output.GetString(), ChatTemplate.Parse(template).Render(vars));
            return;
        }
        var error = Assert.ThrowsAny<IrrException>(() => ChatTemplate.Parse(template).Render(vars));
        if (entry.GetProperty("error").GetString() == "TemplateError")
            Assert.Equal(entry.GetProperty("message").GetString(), Assert.IsType<TemplateRaisedException>(error).RaisedMessage);
    }
}
