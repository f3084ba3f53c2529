using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Irr.Tests.IO;

/// <summary>
/// The Hub's model-card metadata rules, written here from the Hub's own sources and independent of irr's ModelCard and
/// CardLicense (nothing of Irr.IO is used): the front-matter block as huggingface_hub's repocard.py finds it
/// (REGEX_YAML_BLOCK), parsed with YamlDotNet; the keys of huggingface_hub's ModelCardData and hub-docs' modelcard.md;
/// <c>base_model</c> a repo ID or a list of them (utils/_validators.py: REPO_ID_REGEX, no "--" or "..", not ".git", at most
/// 96 characters); <c>base_model_relation</c> one of adapter, merge, quantized, finetune, with a base model, and merge
/// with two or more (hub-docs model-cards.md "Specifying a base model"); <c>datasets</c> Hub dataset IDs;
/// <c>library_name</c>, <c>pipeline_tag</c> and <c>license</c> from the Hub's lists (tests/fixtures/hub/*.txt, made by
/// make-lists.mjs from @huggingface/tasks and hub-docs repositories-licenses.md); <c>license_name</c> (an id like
/// my-license-1.0) and <c>license_link</c> only with <c>license: other</c>, the name then required (modelcard.md); tags
/// lower-case without spaces; every scalar a string (YAML's core schema would read a plain <c>true</c>, <c>1.0</c> or
/// <c>null</c> as another type).
/// </summary>
internal static partial class HubCardRules
{
    private static readonly Lazy<HashSet<string>> Licenses = new(() => List("licenses.txt"));
    private static readonly Lazy<HashSet<string>> PipelineTags = new(() => List("pipeline-tags.txt"));
    private static readonly Lazy<HashSet<string>> Libraries = new(() => List("libraries.txt"));

    // ModelCardData's fields (model-index for eval_results/model_name) and modelcard.md's other keys.
    private static readonly HashSet<string> Keys =
    [
        "base_model", "base_model_relation", "datasets", "model-index", "language", "library_name", "license", "license_name",
        "license_link", "metrics", "pipeline_tag", "tags", "thumbnail", "new_version", "buckets",
    ];

    private static readonly HashSet<string> Relations = ["adapter", "merge", "quantized", "finetune"];

    /// <summary>The Hub's licence identifiers (tests/fixtures/hub/licenses.txt).</summary>
    public static IReadOnlySet<string> LicenseIds => Licenses.Value;

    private static HashSet<string> List(string name) =>
        File.ReadLines(Text.Fixtures.Local($"hub/{name}")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToHashSet(StringComparer.Ordinal);

    /// <summary>The front matter of <paramref name="card"/>, checked against every rule (an assertion fails naming the first broken one).</summary>
    public static YamlMappingNode Check(string card, string what = "card")
    {
        var block = YamlBlock().Match(card);
        Assert.True(block.Success && block.Index == 0, $"{what}: no YAML front matter at the top");
        Assert.False(string.IsNullOrWhiteSpace(card[block.Length..]), $"{what}: no body after the front matter");
        var yaml = new YamlStream();
        yaml.Load(new StringReader(block.Groups[2].Value));
        var meta = Assert.IsType<YamlMappingNode>(Assert.Single(yaml.Documents).RootNode);
        var keys = meta.Children.Keys.Select(k => Assert.IsType<YamlScalarNode>(k).Value!).ToList();
        Assert.True(keys.Distinct().Count() == keys.Count, $"{what}: a repeated key");
        foreach (string key in keys) Assert.True(Keys.Contains(key), $"{what}: '{key}' is not a model-card key");

        var baseModels = Strings(meta, "base_model", what, listAllowed: true);
        foreach (string id in baseModels) Assert.True(IsRepoId(id), $"{what}: base_model '{id}' is not a Hub repo ID");
        if (Strings(meta, "base_model_relation", what) is [var relation])
        {
            Assert.True(Relations.Contains(relation), $"{what}: base_model_relation '{relation}'");
            Assert.True(baseModels.Count >= (relation == "merge" ? 2 : 1), $"{what}: base_model_relation {relation} without its base models");
        }
        foreach (string id in Strings(meta, "datasets", what, listAllowed: true))
            Assert.True(IsRepoId(id), $"{what}: dataset '{id}' is not a Hub dataset ID");
        foreach (string library in Strings(meta, "library_name", what))
            Assert.True(Libraries.Value.Contains(library), $"{what}: library_name '{library}' is not one of the Hub's");
        foreach (string tag in Strings(meta, "pipeline_tag", what))
            Assert.True(PipelineTags.Value.Contains(tag), $"{what}: pipeline_tag '{tag}' is not one of the Hub's");
        var license = Strings(meta, "license", what);
        foreach (string id in license) Assert.True(Licenses.Value.Contains(id), $"{what}: license '{id}' is not a Hub licence identifier");
        var name = Strings(meta, "license_name", what);
        var link = Strings(meta, "license_link", what);
        if (license is ["other"]) Assert.True(name is [var n] && LicenseName().IsMatch(n), $"{what}: license: other needs a license_name id");
        else Assert.True(name.Count == 0 && link.Count == 0, $"{what}: license_name or license_link without license: other");
        foreach (string url in link)
            Assert.True(url is "LICENSE" or "LICENSE.md" || Uri.TryCreate(url, UriKind.Absolute, out var u) && u.Scheme is "https" or "http", $"{what}: license_link '{url}'");
        var tags = Strings(meta, "tags", what, listAllowed: true, listRequired: true);
        foreach (string tag in tags) Assert.True(tag.Length > 0 && tag == tag.ToLowerInvariant() && !tag.Any(char.IsWhiteSpace), $"{what}: tag '{tag}'");
        Assert.True(tags.Distinct().Count() == tags.Count, $"{what}: a repeated tag");
        return meta;
    }

    // The values of a key (none when absent): a string scalar, or with listAllowed a sequence of them.
    private static List<string> Strings(YamlMappingNode meta, string key, string what, bool listAllowed = false, bool listRequired = false)
    {
        if (!meta.Children.TryGetValue(new YamlScalarNode(key), out var node)) return [];
        if (node is YamlSequenceNode list)
        {
            Assert.True(listAllowed, $"{what}: {key} is a list");
            return list.Children.Select(c => String(c, key, what)).ToList();
        }
        Assert.False(listRequired, $"{what}: {key} is not a list");
        return [String(node, key, what)];
    }

    private static string String(YamlNode node, string key, string what)
    {
        var scalar = Assert.IsType<YamlScalarNode>(node);
        Assert.False(scalar.Style == YamlDotNet.Core.ScalarStyle.Plain && NotAString().IsMatch(scalar.Value!), $"{what}: {key} '{scalar.Value}' is not read as a string");
        Assert.False(string.IsNullOrEmpty(scalar.Value), $"{what}: {key} is empty");
        return scalar.Value!;
    }

    private static bool IsRepoId(string id) =>
        RepoId().IsMatch(id) && !id.Contains("--", StringComparison.Ordinal) && !id.Contains("..", StringComparison.Ordinal) && !id.EndsWith(".git", StringComparison.Ordinal);

    // repocard.py's REGEX_YAML_BLOCK.
    [GeneratedRegex(@"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")]
    private static partial Regex YamlBlock();

    // _validators.py's REPO_ID_REGEX, ASCII word characters (Hub IDs are ASCII).
    [GeneratedRegex(@"^(\b[A-Za-z0-9_\-.]+\b/)?\b[A-Za-z0-9_\-.]{1,96}\b$")]
    private static partial Regex RepoId();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9.-]*$")]
    private static partial Regex LicenseName();

    // YAML 1.2 core schema: null, booleans, integers, floats (and YAML 1.1's yes/no/on/off, which js-yaml's default schema drops but others keep).
    [GeneratedRegex(@"^(~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")]
    private static partial Regex NotAString();
}
