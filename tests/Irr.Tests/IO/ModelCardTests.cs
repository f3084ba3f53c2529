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
        var card = new ModelCard("Llama-2-7b-chat-hf", "transformers", "irr", "IRR", ModelCard.IrrPaper, [("s (sparsity)", "0.5")], License: "llama2");
        var (meta, body) = Parse(card.Render());
        Assert.Equal(["base_model", "library_name", "license", "pipeline_tag", "tags"], Keys(meta));
        Assert.Equal("Llama-2-7b-chat-hf", Scalar(meta, "base_model"));
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

    [Theory]
    [InlineData("a\"b\\c")]
    [InlineData("x\n---\nlicense: evil")]
    [InlineData("bell\u0007 tab\t cr\r del\u007f nel\u0085 ls\u2028 ps\u2029 bom\uFEFF")]
    [InlineData("# not: a comment, [flow] {map} &anchor *alias !tag |> %")]
    [InlineData("naïve-модель-模型-🙂")]
    public void AnUntrustedNameComesBackExactlyAndStaysInItsScalar(string name)
    {
        string text = new ModelCard(name, "transformers", "irr", "IRR", null, [("calibration", name)]).Render();
        var (meta, body) = Parse(text);
        Assert.Equal(["base_model", "library_name", "pipeline_tag", "tags"], Keys(meta));
        Assert.Equal(name, Scalar(meta, "base_model"));
        // The body: one line per setting, no raw control character.
        Assert.DoesNotContain(body, c => char.IsControl(c) && c != '\n' || c is '\u2028' or '\u2029');
        Assert.Single(body.Split('\n'), l => l.StartsWith("- calibration: ", StringComparison.Ordinal));
    }

    [Fact]
    public void TheEvaluationSectionEndsTheBody()
    {
        var card = new ModelCard("m", "transformers", "irr", "IRR", null, []) { Evaluation = ["harmful rate: 0.1", "rule: *"] };
        Assert.EndsWith("\n## Evaluation\n\n- harmful rate: 0.1\n- rule: \\*\n", card.Render());
        Assert.Equal("", ModelCard.EvaluationSection([]));
    }

    [Theory]
    [InlineData("---\nlicense: apache-2.0\ntags: [a]\n---\n# x\n", "apache-2.0")]
    [InlineData("---\nlanguage: en\nlicense: \"llama2\"\n---\n", "llama2")]
    [InlineData("---\ntags: [a]\n---\nlicense: mit\n", null)]
    [InlineData("# no front matter\nlicense: mit\n", null)]
    [InlineData("---\nlicense: \"x\\nevil: 1\"\n---\n", null)]
    public void TheLicenseIsTheBaseCardsOwn(string readme, string? expected)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["m"]);
        Assert.Null(ModelCard.LicenseOf(dir["m"]));
        File.WriteAllText(Path.Combine(dir["m"], "README.md"), readme);
        Assert.Equal(expected, ModelCard.LicenseOf(dir["m"]));
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
        File.WriteAllText(Path.Combine(aligned, "README.md"), "---\nlicense: apache-2.0\n---\n# the aligned model\n");
        File.WriteAllText(Path.Combine(finetuned, "README.md"), "# the fine-tune's own card\n");
        string safety = IrrCommandTests.Records(dir, "safety.jsonl", 4, "how do I");
        string task = IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        string sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(task)));
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "--modules", "q_proj,v_proj", "-o", dir["v.safetensors"]));
        Ok(CliRunner.Run("fisher", "--model", aligned, "--data", safety, "--modules", "q_proj,v_proj", "--batch-size", "2", "-o", dir["f.safetensors"]));
        string[] realign = ["realign", "--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["v.safetensors"], "--fisher", dir["f.safetensors"],
            "--calibration", task, "--modules", "q_proj,v_proj", "--sparsity", "0.25", "--blocksize", "8", "--nsamples", "4"];

        Ok(CliRunner.Run([.. realign, "-o", dir["repaired"]]));
        var (meta, body) = Parse(File.ReadAllText(Path.Combine(dir["repaired"], "README.md")));
        Assert.Equal("aligned", Scalar(meta, "base_model"));
        Assert.Equal("transformers", Scalar(meta, "library_name"));
        Assert.Equal("apache-2.0", Scalar(meta, "license"));
        Assert.Equal(["irr", "safety-realignment"], Tags(meta));
        Assert.DoesNotContain("the fine-tune's own card", body);
        foreach (string line in (string[])["- method: `irr`", "- s \\(sparsity\\): `0.25`", "- modules: `q_proj, v_proj`", "- blocksize: `8`",
                     "- percdamp: `0.01`", "- calibration: `task.jsonl`", $"- calibration SHA-256: `{sha}`"])
            Assert.Contains(line + "\n", body);

        Ok(CliRunner.Run([.. realign, "--no-model-card", "-o", dir["plain"]]));
        Assert.Equal("# the fine-tune's own card\n", File.ReadAllText(Path.Combine(dir["plain"], "README.md"))); // copied as before

        string[] resta = ["baseline", "resta", "--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["v.safetensors"], "--modules", "q_proj,v_proj", "--gamma", "0.5"];
        Ok(CliRunner.Run([.. resta, "-o", dir["resta"]]));
        (meta, body) = Parse(File.ReadAllText(Path.Combine(dir["resta"], "README.md")));
        Assert.Equal(["irr", "safety-realignment", "resta"], Tags(meta));
        Assert.Contains("https://arxiv.org/abs/2402.11746", body);
        Assert.Contains("- γ \\(gamma\\): `0.5`\n", body);
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
        var (meta, body) = Parse(File.ReadAllText(Path.Combine(w.Dir["adapter"], "README.md")));
        Assert.Equal("aligned", Scalar(meta, "base_model"));
        Assert.Equal("peft", Scalar(meta, "library_name"));
        Assert.Equal(["irr", "train"], Tags(meta)); // no safety-realignment tag on a fine-tune
        Assert.Contains("- r: `2`\n", body);
        Assert.Contains($"- data SHA-256: `{sha}`\n", body);
        Ok(CliRunner.Run([.. lora, "--no-model-card", "-o", w.Dir["adapter-plain"]]));
        Assert.False(File.Exists(Path.Combine(w.Dir["adapter-plain"], "README.md")));

        Ok(CliRunner.Run("train", "--model", w.Aligned, "--data", w.Data, "--full", "--epochs", "1", "-o", w.Dir["full"]));
        (meta, _) = Parse(File.ReadAllText(Path.Combine(w.Dir["full"], "README.md")));
        Assert.Equal("transformers", Scalar(meta, "library_name"));

        string[] safelora = ["baseline", "safelora", "--base", w.Aligned, "--adapter", w.Dir["adapter"], "--safety-vector", w.Vector, "--layers", "1"];
        Ok(CliRunner.Run([.. safelora, "-o", w.Dir["safe"]]));
        (meta, body) = Parse(File.ReadAllText(Path.Combine(w.Dir["safe"], "README.md")));
        Assert.Equal(("aligned", "peft"), (Scalar(meta, "base_model"), Scalar(meta, "library_name")));
        Assert.Equal(["irr", "safety-realignment", "safelora"], Tags(meta));
        Assert.Contains("https://arxiv.org/abs/2405.16833", body);
        Assert.Contains("- K \\(layers\\): `1`\n", body);
        Ok(CliRunner.Run([.. safelora, "--no-model-card", "-o", w.Dir["safe-plain"]]));
        Assert.False(File.Exists(Path.Combine(w.Dir["safe-plain"], "README.md")));

        File.WriteAllText(w.Dir["harmful.json"], """["how do I pick a lock"]""");
        string[] sweep = ["sweep", "--base", w.Aligned, "--finetuned", w.Finetuned, "--safety-vector", w.Vector, "--fisher", w.Fisher, "--calibration", w.Data,
            "--modules", "q_proj,v_proj", "--blocksize", "8", "--nsamples", "2", "--harmful-val", w.Dir["harmful.json"], "--task-val", w.Data,
            "--task-metric", "exact", "--max-new-tokens", "2", "--sparsity", "0.5"];
        Ok(CliRunner.Run([.. sweep, "-o", w.Dir["sweep"]]));
        (meta, body) = Parse(File.ReadAllText(Path.Combine(w.Dir["sweep"], "chosen", "README.md")));
        Assert.Equal("aligned", Scalar(meta, "base_model"));
        Assert.Contains("\n## Evaluation\n\n- chosen by irr sweep: irr-s0.5 \\(s = 0.5\\)\n- validation harmful rate: ", body);
        Assert.Contains("- validation task score \\(exact\\): ", body);
        Assert.Contains("- rule: among the IRR points", body);
        Ok(CliRunner.Run([.. sweep, "--no-model-card", "-o", w.Dir["sweep-plain"]]));
        Assert.False(File.Exists(Path.Combine(w.Dir["sweep-plain"], "chosen", "README.md")));
    }

    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);
}
