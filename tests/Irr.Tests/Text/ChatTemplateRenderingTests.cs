using System.Text.Json;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// The 88 renderings of references/chat_template_renderings.json, made with real jinja2 set up as
/// transformers sets it up: every one must come out identical, and every expected error must be raised
/// with the same message.
/// </summary>
public class ChatTemplateRenderingTests
{
    private static readonly Lazy<JsonDocument> Doc = new(() =>
        JsonDocument.Parse(File.ReadAllText(Fixtures.Local("references/chat_template_renderings.json"))));

    public static TheoryData<int, string, string> Cases()
    {
        var data = new TheoryData<int, string, string>();
        int i = 0;
        foreach (var c in Doc.Value.RootElement.EnumerateArray())
        {
            string agp = c.GetProperty("add_generation_prompt").GetBoolean() ? "gen" : "nogen";
            data.Add(i++, Path.GetFileNameWithoutExtension(c.GetProperty("template_file").GetString()!), $"{c.GetProperty("case").GetString()}/{agp}");
        }
        return data;
    }

    [Fact]
    public void ThereAre88Cases() => Assert.Equal(88, Doc.Value.RootElement.GetArrayLength());

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersAsJinja2Does(int index, string template, string @case)
    {
        var c = Doc.Value.RootElement[index];
        string source = File.ReadAllText(Fixtures.Local(c.GetProperty("template_file").GetString()!));
        var vars = new Dictionary<string, JsonElement>
        {
            ["messages"] = c.GetProperty("messages"),
            ["tools"] = c.GetProperty("tools"),
            ["documents"] = JsonDocument.Parse("null").RootElement,
            ["add_generation_prompt"] = c.GetProperty("add_generation_prompt"),
        };
        foreach (var token in new[] { "bos_token", "eos_token" })
            if (c.GetProperty(token).ValueKind != JsonValueKind.Null) vars[token] = c.GetProperty(token);
        var chat = ChatTemplate.Parse(source);

        if (c.GetProperty("expected").ValueKind == JsonValueKind.Null)
        {
            var e = Assert.Throws<TemplateRaisedException>(() => chat.Render(vars));
            Assert.Equal(c.GetProperty("expected_error").GetString(), e.RaisedMessage);
        }
        else Assert.Equal(c.GetProperty("expected").GetString(), chat.Render(vars));
        Assert.NotEmpty(template + @case);
    }
}
