using System.Text.Json.Nodes;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// Which files give the tokenizer and the chat template, as transformers and vLLM decide: the expected behaviour is
/// transformers' <c>PreTrainedTokenizerBase._from_pretrained</c> (chat_template.jinja and additional_chat_templates/
/// replace the config's chat_template; its test <c>test_chat_template_file_priority</c>), its <c>get_chat_template</c>
/// (the "default" template; "multiple chat templates with no default specified! … Available template names are [...]"),
/// and vLLM's <c>get_lora_tokenizer</c> (the adapter folder's tokenizer when it has one).
/// </summary>
public class TokenizerSourceTests
{
    private static readonly ChatMessage[] Hi = [new("user", "hi")];

    private static string Render(PretrainedTokenizer t, string? name = null) => t.ApplyChatTemplate(Hi, addGenerationPrompt: false, name);

    private static void Write(string dir, string relative, string text)
    {
        string path = Path.Combine(dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private static TinyModelDir WithConfigTemplate(JsonNode? template) =>
        new(new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["chat_template"] = template });

    [Fact]
    public void ChatTemplateJinjaTakesPrecedenceOverTheConfigKey()
    {
        // transformers' test_chat_template_file_priority: a chat_template.jinja beside a config with a chat_template wins.
        using var dir = WithConfigTemplate("config {{ messages[0].content }}");
        Write(dir.Path, "chat_template.jinja", "file {{ messages[0].content }}");
        Assert.Equal("file hi", Render(PretrainedTokenizer.Load(dir.Path)));
        File.Delete(Path.Combine(dir.Path, "chat_template.jinja"));
        Assert.Equal("config hi", Render(PretrainedTokenizer.Load(dir.Path)));
    }

    [Fact]
    public void NamedTemplateFilesJoinTheJinjaFileAndReplaceTheConfigsTemplates()
    {
        using var dir = WithConfigTemplate(new JsonArray(
            new JsonObject { ["name"] = "default", ["template"] = "config" }, new JsonObject { ["name"] = "rag", ["template"] = "config rag" }));
        Write(dir.Path, "chat_template.jinja", "file");
        Write(dir.Path, "additional_chat_templates/tool_use.jinja", "file tool_use");
        var t = PretrainedTokenizer.Load(dir.Path);
        Assert.Equal("file", Render(t));
        Assert.Equal("file tool_use", Render(t, "tool_use"));
        // The config's templates are gone altogether once a template file exists (init_kwargs["chat_template"] is replaced).
        Assert.Equal("chat_template.jinja and additional_chat_templates/: the specified chat template 'rag' is not available. Available template names are ['default', 'tool_use'].",
            Assert.Throws<IrrException>(() => Render(t, "rag")).Message);
    }

    [Fact]
    public void NamedTemplateFilesWithoutADefaultAreListed()
    {
        // Only additional_chat_templates/: they replace the config's string template, and there is no "default".
        using var dir = WithConfigTemplate("config");
        Write(dir.Path, "additional_chat_templates/tool_use.jinja", "T");
        Write(dir.Path, "additional_chat_templates/rag.jinja", "R");
        var t = PretrainedTokenizer.Load(dir.Path);
        var e = Assert.Throws<IrrException>(() => Render(t));
        Assert.Equal("additional_chat_templates/: multiple chat templates with no default specified; pick one by name (irr chat-format --template NAME). " +
                     "Available template names are ['rag', 'tool_use'].", e.Message);
        Assert.Equal("R", Render(t, "rag"));
    }

    [Fact]
    public void ConfigTemplatesWithoutADefaultAreListedNotReportedMissing()
    {
        using var dir = WithConfigTemplate(new JsonArray(
            new JsonObject { ["name"] = "tool_use", ["template"] = "T" }, new JsonObject { ["name"] = "rag", ["template"] = "R" }));
        var t = PretrainedTokenizer.Load(dir.Path);
        Assert.Equal("tokenizer_config.json: multiple chat templates with no default specified; pick one by name (irr chat-format --template NAME). " +
                     "Available template names are ['rag', 'tool_use'].", Assert.Throws<IrrException>(() => ChatPrompt.Render(t, "a", null)).Message);
        Assert.Equal("T", Render(t, "tool_use"));
        Assert.Equal(["tool_use", "rag"], t.ChatTemplateNames);
    }

    [Fact]
    public void TheLegacyProcessorFileIsTheLastResort()
    {
        using var dir = WithConfigTemplate("config");
        Write(dir.Path, "chat_template.json", """{"chat_template": "legacy {{ messages[0].content }}"}""");
        Assert.Equal("config", Render(PretrainedTokenizer.Load(dir.Path)));
        using var bare = WithConfigTemplate(null);
        Write(bare.Path, "chat_template.json", """{"chat_template": "legacy {{ messages[0].content }}"}""");
        Assert.Equal("legacy hi", Render(PretrainedTokenizer.Load(bare.Path)));
        Write(bare.Path, "chat_template.jinja", "jinja");
        Assert.Equal("jinja", Render(PretrainedTokenizer.Load(bare.Path)));
        Write(bare.Path, "chat_template.json", "[1]");
        File.Delete(Path.Combine(bare.Path, "chat_template.jinja"));
        Assert.Equal("chat_template.json: expected an object, found an array", Assert.Throws<IrrException>(() => PretrainedTokenizer.Load(bare.Path)).Message);
    }

    [Fact]
    public void AnAdaptersTokenizerAndTemplateAreUsedWithANote()
    {
        using var model = WithConfigTemplate("base");
        using var adapter = WithConfigTemplate("adapter {{ messages[0].content }}");
        Write(adapter.Path, "adapter_config.json", "{}");
        var warnings = new List<string>();
        PretrainedTokenizer t;
        using (Diagnostics.Listen(warnings.Add)) t = PretrainedTokenizer.Load(model.Path, adapter.Path);
        Assert.Equal("adapter hi", Render(t));
        Assert.True(t.FromAdapter);
        Assert.Equal(adapter.Path, t.Directory);
        Assert.Equal([$"{adapter.Path}: using the tokenizer and chat template saved with the adapter, not {model.Path}'s (as vLLM and AutoTokenizer.from_pretrained on the adapter folder do)"], warnings);
        // An adapter folder without tokenizer files: the model's, silently (vLLM: "No tokenizer found", base tokenizer).
        using var bare = new TempFolder();
        warnings.Clear();
        using (Diagnostics.Listen(warnings.Add)) t = PretrainedTokenizer.Load(model.Path, bare.Path);
        Assert.Equal("base", Render(t));
        Assert.False(t.FromAdapter);
        Assert.Empty(warnings);
    }

    [Fact]
    public void AnAdaptersTemplateWithoutItsTokenizerIsWarnedAbout()
    {
        using var model = WithConfigTemplate("base");
        using var adapter = new TempFolder();
        Write(adapter.Path, "chat_template.jinja", "adapter");
        Write(adapter.Path, "tokenizer_config.json", "{}");
        var warnings = new List<string>();
        PretrainedTokenizer t;
        using (Diagnostics.Listen(warnings.Add)) t = PretrainedTokenizer.Load(model.Path, adapter.Path);
        Assert.Equal("base", Render(t));
        Assert.Equal([$"{adapter.Path}: has tokenizer_config.json, chat_template.jinja but no tokenizer.json or tokenizer.model, so they are not used: the tokenizer and chat template are {model.Path}'s " +
                      "(save the adapter's tokenizer with tokenizer.save_pretrained to use it)"], warnings);
    }

    [Fact]
    public void AnAdaptersTokenizerMustFitTheEmbedding()
    {
        // The tiny vocabulary has ids 0 to 269 (TinyVocabularies): 270 ids.
        using var model = WithConfigTemplate("base");
        using var adapter = WithConfigTemplate("adapter");
        var t = PretrainedTokenizer.Load(model.Path, adapter.Path);
        t.RequireFits(270, model.Path);
        t.RequireFits(300, model.Path); // a padded embedding (Qwen2: 151,936 rows, 151,665 ids) is fine
        var e = Assert.Throws<IrrException>(() => t.RequireFits(260, model.Path));
        Assert.StartsWith($"{Path.Combine(adapter.Path, "tokenizer.json")}: the adapter's tokenizer has 270 ids (0 to 269), but {model.Path} with the adapter has 260 embedding rows", e.Message);
        // The model's own tokenizer is not the adapter's: not checked here.
        PretrainedTokenizer.Load(model.Path).RequireFits(260, model.Path);
    }

    [Fact]
    public void NamedTemplatesCountInTheModelsContentHash()
    {
        using var dir = WithConfigTemplate("config");
        string before = Irr.Jobs.ContentHash.OfModel(dir.Path)!;
        Write(dir.Path, "additional_chat_templates/tool_use.jinja", "T");
        Assert.NotEqual(before, Irr.Jobs.ContentHash.OfModel(dir.Path));
    }

    [Fact]
    public void NamesAreListedAsPythonPrintsASortedList() =>
        Assert.Equal("['a', \"b'c\", 'tool_use']", TokenizerSource.NameList(["tool_use", "b'c", "a"]));

    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("irr-source-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
