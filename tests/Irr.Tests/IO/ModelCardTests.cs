using System.Security.Cryptography;
using Irr.IO;
using Irr.Tests.Cli;
using YamlDotNet.RepresentationModel;

namespace Irr.Tests.IO;

/// <summary>
/// README.md model cards: the front matter parsed by YamlDotNet (an independent YAML reader) against hand-worked
/// expectations, and the commands that write models (realign, baseline resta) with and without <c>--no-model-card</c>.
/// </summary>
public class ModelCardTests
{
    // The front matter between the first two "---" lines, parsed; the body after it.
    internal static (YamlMappingNode Meta, string Body) Parse(string text)
    {
        Assert.StartsWith("---\n", text);
        int end = text.IndexOf("\n---\n", 3, StringComparison.Ordinal);
        Assert.True(end > 0, "no end of the front matter");
        var yaml = new YamlStream();
        yaml.Load(new StringReader(text[4..(end + 1)]));
        return ((YamlMappingNode)yaml.Documents.Single().RootNode, text[(end + 5)..]);
    }

    private static string Scalar(YamlMappingNode meta, string key) => ((YamlScalarNode)meta[new YamlScalarNode(key)]).Value!;

    private static string[] Tags(YamlMappingNode meta) =>
        ((YamlSequenceNode)meta[new YamlScalarNode("tags")]).Children.Select(t => ((YamlScalarNode)t).Value!).ToArray();

    private static string[] Keys(YamlMappingNode meta) => meta.Children.Keys.Select(k => ((YamlScalarNode)k).Value!).ToArray();


    [Theory]
    [InlineData("hub/models--meta-llama--Llama-2-7b-chat-hf/snapshots/0123456789abcdef0123456789abcdef01234567", "meta-llama/Llama-2-7b-chat-hf")]
    [InlineData("hub/models--org--name/snapshots/0123456789abcdef0123456789abcdef01234567/", "org/name")]
    [InlineData("runs/Llama-2-7b-chat-hf", "Llama-2-7b-chat-hf")]
    [InlineData("runs/snapshots/abc", "abc")]
    public void TheBaseModelIsTheHubIdOfACacheSnapshotElseTheDirectorysName(string path, string expected) =>
        Assert.Equal(expected, ModelCard.BaseModelOf(path));
    [Fact]
    public void TheFrontMatterHasTheHubsKeys()
    {
        var card = new ModelCard("Llama-2-7b-chat-hf", "transformers", "irr", "IRR", ModelCard.IrrPaper, [("s (sparsity)", "0.5")], new CardLicense("llama2"))
        {
            BaseModelRelation = ModelCard.Finetune, Datasets = ["walledai/XSTest"],
        };
        var (meta, body) = Parse(card.Render());
        HubCardRules.Check(card.Render());
        Assert.Equal(["base_model", "base_model_relation", "datasets", "library_name", "license", "pipeline_tag", "tags"], Keys(meta));
        Assert.Equal("Llama-2-7b-chat-hf", Scalar(meta, "base_model"));
        Assert.Equal("finetune", Scalar(meta, "base_model_relation"));
        Assert.Equal("transformers", Scalar(meta, "library_name"));
        Assert.Equal("llama2", Scalar(meta, "license"));
        Assert.Equal("text-generation", Scalar(meta, "pipeline_tag"));
        Assert.Equal(["irr", "safety-realignment"], Tags(meta));
        Assert.Contains("https://arxiv.org/abs/2412.11041", body);
        Assert.Contains("- s \\(sparsity\\): `0.5`\n", body);
        Assert.DoesNotContain("## Evaluation", body);
    }

    [Fact]
    public void NoLicenseKeyWhenTheBaseHasNone()
    {
        var (meta, _) = Parse(new ModelCard("m", "peft", "safelora", "Safe LoRA", null, []).Render());
        Assert.Equal(["base_model", "library_name", "pipeline_tag", "tags"], Keys(meta));
        Assert.Equal("peft", Scalar(meta, "library_name"));
    }

    [Fact]
    public void AnOtherLicenceHasItsNameAndLink()
    {
        string text = new ModelCard("m", "transformers", "irr", "IRR", null, [], new CardLicense("other", "my-license-1.0", "https://example.com/L")).Render();
        var meta = HubCardRules.Check(text);
        Assert.Equal(("other", "my-license-1.0", "https://example.com/L"), (Scalar(meta, "license"), Scalar(meta, "license_name"), Scalar(meta, "license_link")));
    }

    [Theory]
    [InlineData("a\"b\\c")]
    [InlineData("x\n---\nlicense: evil")]
    [InlineData("bell\u0007 tab\t cr\r del\u007f nel\u0085 ls\u2028 ps\u2029 bom\uFEFF")]
    [InlineData("# not: a comment, [flow] {map} &anchor *alias !tag |> %")]
    [InlineData("naïve-модель-模型-🙂")]
    [InlineData("my model (v2)")]
    [InlineData("a--b")]
    public void ANameThatIsNoRepoIdStaysOutOfTheFrontMatterAndOnOneLineOfTheBody(string name)
    {
        string text = new ModelCard(name, "transformers", "irr", "IRR", null, [("calibration", name)]) { BaseModelRelation = ModelCard.Finetune }.Render();
        var meta = HubCardRules.Check(text, name);
        Assert.Equal(["library_name", "pipeline_tag", "tags"], Keys(meta)); // no base_model, so no relation either
        string body = text[text.IndexOf("\n---\n", 3, StringComparison.Ordinal)..];
        // The body: one line per setting and one naming the base, no raw control character.
        Assert.DoesNotContain(body, c => char.IsControl(c) && c != '\n' || c is '\u2028' or '\u2029');
        Assert.Single(body.Split('\n'), l => l.StartsWith("- calibration: ", StringComparison.Ordinal));
        Assert.Single(body.Split('\n'), l => l.StartsWith("Base model: `", StringComparison.Ordinal) && l.EndsWith("not in the metadata).", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Irr-More", "irr-more")]
    [InlineData("RandomAt Count!", "randomat-count")]
    public void TagsAreLowerCaseWithoutSpaces(string method, string tag) =>
        Assert.Equal(["irr", "safety-realignment", tag], Tags(HubCardRules.Check(new ModelCard("m", "transformers", method, "x", null, []).Render())));

    [Fact]
    public void TheEvaluationSectionEndsTheBody()
    {
        var card = new ModelCard("m", "transformers", "irr", "IRR", null, []) { Evaluation = ["harmful rate: 0.1", "rule: *"] };
        Assert.EndsWith("\n## Evaluation\n\n- harmful rate: 0.1\n- rule: \\*\n", card.Render());
        Assert.Equal("", ModelCard.EvaluationSection([]));
    }

    [Theory]
    [InlineData("hub/datasets--org--name/snapshots/0123456789abcdef0123456789abcdef01234567/data/train.jsonl", "org/name")]
    [InlineData("hub/datasets--walledai--XSTest/snapshots/0123456789abcdef0123456789abcdef01234567/data/train-00000-of-00001.parquet", "walledai/XSTest")]
    [InlineData("hub/models--org--name/snapshots/0123456789abcdef0123456789abcdef01234567/train.jsonl", null)]
    [InlineData("data/train.jsonl", null)]
    public void ADataFileIsAHubDatasetOnlyWhenItCameFromOne(string path, string? expected) => Assert.Equal(expected, ModelCard.DatasetOf(path));

    [Theory]
    [InlineData("---\nlicense: apache-2.0\ntags: [a]\n---\n# x\n", "apache-2.0", null, null)]
    [InlineData("---\nlanguage: en\nlicense: \"llama2\"\n---\n", "llama2", null, null)]
    [InlineData("---\nlanguage: en\nlicense: 'Apache-2.0' # the Hub's id is lower-case\n---\n", "apache-2.0", null, null)]
    [InlineData("---\nlanguage:\n- en\nlicense:\n  - mit\n---\n", "mit", null, null)]
    [InlineData("\uFEFF---\r\nlicense: >-\r\n  cc-by-4.0\r\n---\r\n", "cc-by-4.0", null, null)]
    [InlineData("---\nlicense: other\nlicense_name: Coqui Public Model License\nlicense_link: https://coqui.ai/cpml\n---\n", "other", "coqui-public-model-license", "https://coqui.ai/cpml")]
    [InlineData("---\nlicense: llama-2-community\n---\n", "other", "llama-2-community", null)]
    [InlineData("---\nlicense: other\nlicense_name: x-1.0\nlicense_link: LICENSE\n---\n", "other", "x-1.0", null)] // the base's file is not in the output
    [InlineData("---\ntags: [a]\n---\nlicense: mit\n", null, null, null)]
    [InlineData("# no front matter\nlicense: mit\n", null, null, null)]
    [InlineData("---\nlicense: \"x\\nevil: 1\"\n---\n", "other", "x-evil-1", null)]
    public void TheLicenseIsTheBaseCardsOwnAsTheHubAcceptsIt(string readme, string? id, string? name, string? link)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["m"]);
        Assert.Null(CardLicense.Of(dir["m"]));
        File.WriteAllText(Path.Combine(dir["m"], "README.md"), readme);
        var warnings = new List<string>();
        CardLicense? license;
        using (Diagnostics.Listen(warnings.Add)) license = CardLicense.Of(dir["m"]);
        Assert.Equal(id, license?.Id);
        Assert.Equal(name, license?.Name);
        Assert.Equal(link, license?.Link);
        Assert.Empty(warnings);
        if (license is not null) HubCardRules.Check(new ModelCard("m", "transformers", "irr", "IRR", null, [], license).Render(), readme);
    }

    [Fact]
    public void TheLibrarysLicenceListIsTheHubs() =>
        Assert.Equal(HubCardRules.LicenseIds.Order(StringComparer.Ordinal), CardLicense.HubIdentifiers.Order(StringComparer.Ordinal));

    [Fact]
    public void ARelativeLicenceLinkOfACachedBaseIsItsHubFile()
    {
        using var dir = new TempDir();
        string snapshot = dir["hub/models--org--name/snapshots/0123456789abcdef0123456789abcdef01234567"];
        Directory.CreateDirectory(snapshot);
        File.WriteAllText(Path.Combine(snapshot, "README.md"), "---\nlicense: other\nlicense_name: x\nlicense_link: LICENSE.md\n---\n");
        Assert.Equal(new CardLicense("other", "x", "https://huggingface.co/org/name/blob/0123456789abcdef0123456789abcdef01234567/LICENSE.md"), CardLicense.Of(snapshot));
    }

    [Theory]
    [InlineData("---\nlicense: [mit\n---\n", "does not parse")]
    [InlineData("---\nlicense: mit\n", "does not end")]
    [InlineData("---\n- a list\n---\n", "not a mapping")]
    [InlineData("---\nlicense: [mit, apache-2.0]\n---\n", "not one identifier")]
    [InlineData("---\nlicense: {a: b}\n---\n", "not one identifier")]
    [InlineData("---\nlicense: other\n---\n", "without a license_name")]
    [InlineData("---\nlicense: mit\nx: *nope\n---\n", "does not parse")]
    public void ABadBaseCardGivesNoLicenceAndAWarning(string readme, string warning)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["m"]);
        File.WriteAllText(Path.Combine(dir["m"], "README.md"), readme);
        var warnings = new List<string>();
        using (Diagnostics.Listen(warnings.Add)) Assert.Null(CardLicense.Of(dir["m"]));
        Assert.Contains(warning, Assert.Single(warnings));
    }

    [Fact]
    public void AHugeOrDeepBaseCardIsReadOnlyUpToItsCap()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["m"]);
        string readme = Path.Combine(dir["m"], "README.md");
        var warnings = new List<string>();
        using var listening = Diagnostics.Listen(warnings.Add);
        // Front matter that ends only after the cap (a 300 KiB comment first).
        File.WriteAllText(readme, "---\n#" + new string('x', 300 * 1024) + "\nlicense: mit\n---\n");
        Assert.Null(CardLicense.Of(dir["m"]));
        Assert.Contains("does not end within its first 256 KiB", Assert.Single(warnings));
        // Flow collections nested 100 000 deep (a stack overflow for a recursive parser) are refused before parsing.
        File.WriteAllText(readme, "---\nlicense: mit\nx: " + new string('[', 100_000) + "\n---\n");
        Assert.Null(CardLicense.Of(dir["m"]));
        Assert.Contains("nested deeper than 64", warnings[^1]);
        // A licence after a large model-index within the cap is read.
        File.WriteAllText(readme, "---\nmodel-index:\n" + string.Concat(Enumerable.Repeat("- name: m\n  results: []\n", 5000)) + "license: mit\n---\n");
        Assert.Equal(new CardLicense("mit"), CardLicense.Of(dir["m"]));
    }

    [Fact]
    public void BaseModelIsTheDirectorysName()
    {
        Assert.Equal("Llama-2-7b", ModelCard.BaseModelOf("/models/Llama-2-7b/"));
        Assert.Equal("Llama-2-7b", ModelCard.BaseModelOf("/models/Llama-2-7b"));
    }

    [Fact]
    public void RealignAndRestaWriteACardThatReplacesTheFinetunesReadme()
    {
        using var dir = new TempDir();
        var (aligned, unaligned, finetuned) = ModelCommandTests.ThreeModels(dir);
        // The base's card: the licence as a one-item block list, quoted, in another case than the Hub's identifier.
        File.WriteAllText(Path.Combine(aligned, "README.md"), "---\nlanguage:\n- en\nlicense:\n  - 'Apache-2.0'\n---\n# the aligned model\n");
        File.WriteAllText(Path.Combine(finetuned, "README.md"), "# the fine-tune's own card\n");
        string safety = IrrCommandTests.Records(dir, "safety.jsonl", 4, "how do I");
        string task = IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        string sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(task)));
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "--modules", "q_proj,v_proj", "-o", dir["v.safetensors"]));
        Ok(CliRunner.Run("fisher", "--model", aligned, "--data", safety, "--modules", "q_proj,v_proj", "--batch-size", "2", "-o", dir["f.safetensors"]));
        string[] realign = ["realign", "--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["v.safetensors"], "--fisher", dir["f.safetensors"],
            "--calibration", task, "--modules", "q_proj,v_proj", "--sparsity", "0.25", "--blocksize", "8", "--nsamples", "4"];

        Ok(CliRunner.Run([.. realign, "-o", dir["repaired"]]));
        // Written out by hand from the command line above: θ_A's directory name and licence, the defaults percdamp 0.01,
        // recalibration on and seqlen 512, and the calibration file's SHA-256 (hashed here).
        string expected = $$"""
            ---
            base_model: "aligned"
            base_model_relation: finetune
            library_name: transformers
            license: apache-2.0
            pipeline_tag: text-generation
            tags:
            - irr
            - safety-realignment
            ---

            # aligned (irr)

            Written by irr (IRR.NET) with IRR: Identify, Remove, and Recalibrate (https://arxiv.org/abs/2412.11041).

            ## Settings

            - method: `irr`
            - s \(sparsity\): `0.25`
            - modules: `q_proj, v_proj`
            - blocksize: `8`
            - percdamp: `0.01`
            - recalibrate: `true`
            - nsamples: `4`
            - seqlen: `512`
            - calibration: `task.jsonl`
            - calibration SHA-256: `{{sha}}`

            """;
        string card = File.ReadAllText(Path.Combine(dir["repaired"], "README.md"));
        Assert.Equal(expected, card);
        HubCardRules.Check(card, "realign");

        Ok(CliRunner.Run([.. realign, "--no-model-card", "-o", dir["plain"]]));
        Assert.Equal("# the fine-tune's own card\n", File.ReadAllText(Path.Combine(dir["plain"], "README.md"))); // copied as before

        string[] resta = ["baseline", "resta", "--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["v.safetensors"], "--modules", "q_proj,v_proj", "--gamma", "0.5"];
        Ok(CliRunner.Run([.. resta, "-o", dir["resta"]]));
        string restaCard = File.ReadAllText(Path.Combine(dir["resta"], "README.md"));
        var (meta, body) = Parse(restaCard);
        HubCardRules.Check(restaCard, "resta");
        Assert.Equal("finetune", Scalar(meta, "base_model_relation"));
        Assert.Equal(["irr", "safety-realignment", "resta"], Tags(meta));
        Assert.Contains("https://arxiv.org/abs/2402.11746", body);
        Assert.Contains("- γ \\(gamma\\): `0.5`\n", body);
        // A base card whose front matter does not parse: a warning, and a card without a licence (never a failure).
        File.WriteAllText(Path.Combine(aligned, "README.md"), "---\nlicense: [apache-2.0\n---\n");
        var warned = CliRunner.Run([.. resta, "-o", dir["resta-warned"]]);
        Ok(warned);
        Assert.Contains("warning: ", warned.Err);
        Assert.Contains("does not parse", warned.Err);
        Assert.DoesNotContain("license", Keys(Parse(Valid(Path.Combine(dir["resta-warned"], "README.md"))).Meta));
        File.Delete(Path.Combine(finetuned, "README.md"));
        Ok(CliRunner.Run([.. resta, "--no-model-card", "-o", dir["resta-plain"]]));
        Assert.False(File.Exists(Path.Combine(dir["resta-plain"], "README.md")));
    }

    [Fact]
    public void TrainSafeLoraAndTheSweepsChosenModelWriteCards()
    {
        using var w = new Irr.Tests.Realign.InputChecksTests.World();
        string sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(w.Data)));
        string[] lora = ["train", "--model", w.Aligned, "--data", w.Data, "--lora", "--rank", "2", "--targets", "q_proj,v_proj", "--epochs", "1"];
        Ok(CliRunner.Run([.. lora, "-o", w.Dir["adapter"]]));
        var (meta, body) = Parse(Valid(Path.Combine(w.Dir["adapter"], "README.md")));
        Assert.Equal("aligned", Scalar(meta, "base_model"));
        Assert.Equal(("peft", "adapter"), (Scalar(meta, "library_name"), Scalar(meta, "base_model_relation")));
        Assert.Equal(["irr", "train"], Tags(meta)); // no safety-realignment tag on a fine-tune
        Assert.Contains("- r: `2`\n", body);
        Assert.Contains($"- data SHA-256: `{sha}`\n", body);
        Ok(CliRunner.Run([.. lora, "--no-model-card", "-o", w.Dir["adapter-plain"]]));
        Assert.False(File.Exists(Path.Combine(w.Dir["adapter-plain"], "README.md")));

        Ok(CliRunner.Run("train", "--model", w.Aligned, "--data", w.Data, "--full", "--epochs", "1", "-o", w.Dir["full"]));
        (meta, _) = Parse(Valid(Path.Combine(w.Dir["full"], "README.md")));
        Assert.Equal(("transformers", "finetune"), (Scalar(meta, "library_name"), Scalar(meta, "base_model_relation")));

        string[] safelora = ["baseline", "safelora", "--base", w.Aligned, "--adapter", w.Dir["adapter"], "--safety-vector", w.Vector, "--layers", "1"];
        Ok(CliRunner.Run([.. safelora, "-o", w.Dir["safe"]]));
        (meta, body) = Parse(Valid(Path.Combine(w.Dir["safe"], "README.md")));
        Assert.Equal(("aligned", "peft", "adapter"), (Scalar(meta, "base_model"), Scalar(meta, "library_name"), Scalar(meta, "base_model_relation")));
        Assert.Equal(["irr", "safety-realignment", "safelora"], Tags(meta));
        Assert.Contains("https://arxiv.org/abs/2405.16833", body);
        Assert.Contains("- K \\(layers\\): `1`\n", body);
        Ok(CliRunner.Run([.. safelora, "--no-model-card", "-o", w.Dir["safe-plain"]]));
        Assert.False(File.Exists(Path.Combine(w.Dir["safe-plain"], "README.md")));

        File.WriteAllText(w.Dir["harmful.json"], """["how do I pick a lock"]""");
        string[] sweep = ["sweep", "--base", w.Aligned, "--finetuned", w.Finetuned, "--safety-vector", w.Vector, "--fisher", w.Fisher, "--calibration", w.Data,
            "--modules", "q_proj,v_proj", "--blocksize", "8", "--nsamples", "2", "--harmful-val", w.Dir["harmful.json"], "--task-val", w.Data,
            "--task-metric", "exact", "--max-new-tokens", "2", "--sparsity", "0.5"];
        Ok(CliRunner.Run([.. sweep, "--keep-models", "-o", w.Dir["sweep"]]));
        // Every point's model (kept) and the chosen one carry a card the Hub accepts.
        var cards = Directory.EnumerateFiles(w.Dir["sweep"], "README.md", SearchOption.AllDirectories).ToList();
        Assert.True(cards.Count >= 2, string.Join(", ", cards));
        foreach (string path in cards) Valid(path);
        (meta, body) = Parse(File.ReadAllText(Path.Combine(w.Dir["sweep"], "chosen", "README.md")));
        Assert.Equal("aligned", Scalar(meta, "base_model"));
        Assert.Contains("\n## Evaluation\n\n- chosen by irr sweep: irr-s0.5 \\(s = 0.5\\)\n- validation harmful rate: ", body);
        Assert.Contains("- validation task score \\(exact\\): ", body);
        Assert.Contains("- rule: among the IRR points", body);
        Ok(CliRunner.Run([.. sweep, "--no-model-card", "-o", w.Dir["sweep-plain"]]));
        Assert.False(File.Exists(Path.Combine(w.Dir["sweep-plain"], "chosen", "README.md")));
    }

    [Fact]
    public void AHubModelAndAHubDataSetAreNamedByTheirIds()
    {
        const string commit = "fedcba9876543210fedcba9876543210fedcba98";
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        File.WriteAllText(Path.Combine(model, "README.md"), "---\nlicense: other\nlicense_name: tiny-license\nlicense_link: LICENSE\n---\n# tiny chat\n");
        HubCacheTrees.Add(dir["hub"], "my-org/tiny-chat", model, commit);
        Directory.CreateDirectory(dir["set/data"]);
        File.WriteAllText(dir["set/data/train.jsonl"], """{"instruction": "say 0", "output": "the 0"}""" + "\n");
        string set = HubCacheTrees.Add(dir["hub"], "my-org/tiny-set", dir["set"], commit, repoType: "datasets");
        using var cache = HubCache.Override(dir["hub"]);

        Ok(CliRunner.Run("train", "--model", "my-org/tiny-chat", "--data", Path.Combine(set, "data", "train.jsonl"), "--lora", "--rank", "2",
            "--targets", "q_proj,v_proj", "--epochs", "1", "-o", dir["adapter"]));
        var (meta, _) = Parse(Valid(Path.Combine(dir["adapter"], "README.md")));
        Assert.Equal(("my-org/tiny-chat", "adapter", "peft"), (Scalar(meta, "base_model"), Scalar(meta, "base_model_relation"), Scalar(meta, "library_name")));
        Assert.Equal(["my-org/tiny-set"], ((YamlSequenceNode)meta[new YamlScalarNode("datasets")]).Children.Select(c => ((YamlScalarNode)c).Value));
        Assert.Equal(("other", "tiny-license", $"https://huggingface.co/my-org/tiny-chat/blob/{commit}/LICENSE"),
            (Scalar(meta, "license"), Scalar(meta, "license_name"), Scalar(meta, "license_link")));
    }

    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    // A card's text, checked against the Hub's rules.
    private static string Valid(string path)
    {
        string text = File.ReadAllText(path);
        HubCardRules.Check(text, path);
        return text;
    }
}
