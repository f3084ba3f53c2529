using System.Text;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Irr.IO;

/// <summary>
/// The licence a model card names, as the Hub accepts it (hub-docs repositories-licenses.md and modelcard.md): one of the
/// Hub's licence identifiers (<see cref="HubIdentifiers"/>), or <c>other</c> with a <c>license_name</c> (an identifier
/// such as <c>my-license-1.0</c>) and, when known, a <c>license_link</c> (a URL).
/// </summary>
/// <param name="Id">A Hub licence identifier (<c>apache-2.0</c>, <c>llama2</c> …, or <c>other</c>).</param>
/// <param name="Name">The licence's name for <c>other</c>, else null.</param>
/// <param name="Link">An http(s) URL of the licence's text for <c>other</c>, or null.</param>
public sealed partial record CardLicense(string Id, string? Name = null, string? Link = null)
{
    /// <summary>Bytes of a base's README.md read at most: its front matter must end within them.</summary>
    public const int ReadLimit = 256 * 1024;

    // Flow collections ([ or {) nested deeper than this are refused before parsing (the parser recurses on them).
    private const int MaxFlowDepth = 64;

    /// <summary>
    /// The Hub's licence identifiers: the table of hub-docs docs/hub/repositories-licenses.md (commit 242f4a1e of
    /// 2026-08-22, the "region licenses"), in its order.
    /// </summary>
    public static IReadOnlySet<string> HubIdentifiers { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
        "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear",
        "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
        "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0",
        "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl",
        "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0",
        "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research", "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr",
        "mpl-2.0", "odc-by", "odbl", "openmdw-1.0", "openmdw-1.1", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa",
        "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "fair-noncommercial-research-license", "llama2",
        "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "grok2-community", "gemma", "unknown", "other",
    };

    /// <summary>The front-matter lines: <c>license</c>, then <c>license_name</c> and <c>license_link</c> when set.</summary>
    public string FrontMatter()
    {
        var text = new StringBuilder($"license: {Id}\n");
        if (Name is not null) text.Append($"license_name: {ModelCard.Quote(Name)}\n");
        if (Link is not null) text.Append($"license_link: {ModelCard.Quote(Link)}\n");
        return text.ToString();
    }

    /// <summary>
    /// The licence of the model card in <paramref name="directory"/> (README.md's YAML front matter, read with a YAML
    /// parser: plain, quoted or a one-item list), as the Hub accepts it: a Hub identifier as it is (matched without
    /// regard to case); <c>other</c> with the card's <c>license_name</c> and <c>license_link</c>; any other identifier
    /// as <c>other</c> with it as the name (what repositories-licenses.md asks for a licence not in its list). A relative
    /// <c>license_link</c> (a file of the base's repo) becomes the file's Hub URL when the base is a cache snapshot, and is
    /// dropped otherwise (the file is not in the output).
    /// </summary>
    /// <returns>Null when there is no card, no front matter or no licence, and, with a warning (<see cref="Diagnostics.Warn"/>),
    /// when the card cannot be read, its front matter does not end within <see cref="ReadLimit"/> bytes or does not parse,
    /// or its licence is not one identifier.</returns>
    public static CardLicense? Of(string directory)
    {
        string path = Path.Combine(directory, ModelCard.FileName);
        if (!File.Exists(path)) return null;
        string where = $"{Diagnostics.Escape(path)}: the base's model card";
        string? yaml;
        try { yaml = FrontMatterOf(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Diagnostics.Warn($"{where} cannot be read ({Diagnostics.Escape(e.Message)}); the output's card names no licence");
            return null;
        }
        if (yaml is null) return null;
        if (yaml.Length == 0)
        {
            Diagnostics.Warn($"{where} has YAML front matter that does not end within its first {ReadLimit / 1024} KiB; the output's card names no licence");
            return null;
        }
        var meta = Parse(yaml, where);
        if (meta is null || !meta.Children.TryGetValue(new YamlScalarNode("license"), out var node)) return null;
        string? id = node switch
        {
            YamlScalarNode scalar => scalar.Value,
            YamlSequenceNode { Children: [YamlScalarNode only] } => only.Value,
            _ => null,
        };
        if (string.IsNullOrWhiteSpace(id))
        {
            Diagnostics.Warn($"{where} has a licence that is not one identifier; the output's card names none");
            return null;
        }
        id = id.Trim();
        string? hub = HubIdentifiers.FirstOrDefault(h => string.Equals(h, id, StringComparison.OrdinalIgnoreCase));
        if (hub is not null && hub != "other") return new CardLicense(hub);
        string? name = hub is null ? id : Text(meta, "license_name");
        name = name is null ? null : Identifier(name);
        if (string.IsNullOrEmpty(name))
        {
            Diagnostics.Warn($"{where} has license: other without a license_name; the output's card names no licence");
            return null;
        }
        return new CardLicense("other", name, LinkOf(Text(meta, "license_link"), directory));
    }

    // The YAML between README.md's first two "---" lines (as huggingface_hub's REGEX_YAML_BLOCK finds it), from at most
    // ReadLimit bytes: null when the file does not start with front matter, "" when it does not end within the limit.
    private static string? FrontMatterOf(string path)
    {
        var buffer = new byte[ReadLimit];
        int read = 0;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
            for (int n; read < buffer.Length && (n = stream.Read(buffer, read, buffer.Length - read)) > 0;) read += n;
        string text = new UTF8Encoding(false, false).GetString(buffer, 0, read).TrimStart('\uFEFF');
        var start = FrontMatterStart().Match(text);
        if (!start.Success) return null;
        var end = FrontMatterEnd().Match(text, start.Length);
        return end.Success ? text[start.Length..end.Index] : "";
    }

    [GeneratedRegex(@"\A\s*---(\r\n|\r|\n)")]
    private static partial Regex FrontMatterStart();

    [GeneratedRegex(@"(\r\n|\r|\n)---[ \t]*(\r\n|\n|\z)")]
    private static partial Regex FrontMatterEnd();

    // The front matter as a mapping, or null (with a warning when it is not one, does not parse or nests too deep).
    private static YamlMappingNode? Parse(string yaml, string where)
    {
        int depth = 0, deepest = 0;
        foreach (char c in yaml)
        {
            if (c is '[' or '{') deepest = Math.Max(deepest, ++depth);
            else if (c is ']' or '}') depth--;
        }
        if (deepest > MaxFlowDepth)
        {
            Diagnostics.Warn($"{where} has YAML front matter nested deeper than {MaxFlowDepth}; the output's card names no licence");
            return null;
        }
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(yaml));
            if (stream.Documents.Count == 0) return null;
            if (stream.Documents[0].RootNode is YamlMappingNode mapping) return mapping;
            Diagnostics.Warn($"{where} has YAML front matter that is not a mapping; the output's card names no licence");
        }
        catch (YamlException e)
        {
            Diagnostics.Warn($"{where} has YAML front matter that does not parse ({Diagnostics.Escape(e.Message)}); the output's card names no licence");
        }
        return null;
    }

    private static string? Text(YamlMappingNode meta, string key) =>
        meta.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode { Value: { Length: > 0 } value } ? value.Trim() : null;

    // A licence name as an identifier: lower-case, a run of anything but a-z, 0-9, '.' and '-' made one '-'.
    private static string Identifier(string name) => LicenseNameJunk().Replace(name.ToLowerInvariant(), "-").Trim('-', '.');

    [GeneratedRegex("[^a-z0-9.-]+")]
    private static partial Regex LicenseNameJunk();

    // An absolute http(s) URL as it is; a path in the base's repo as its Hub URL when the base is a cache snapshot; else null.
    private static string? LinkOf(string? link, string directory)
    {
        if (link is null) return null;
        if (Uri.TryCreate(link, UriKind.Absolute, out var uri)) return uri.Scheme is "https" or "http" ? uri.AbsoluteUri : null;
        if (HubCache.RepoOfSnapshot(directory) is not { } repo || link.Contains("..", StringComparison.Ordinal)) return null;
        string file = string.Join('/', link.TrimStart('.', '/').Split('/').Select(Uri.EscapeDataString));
        return file.Length == 0 ? null : $"https://huggingface.co/{repo.RepoId}/blob/{repo.Commit}/{file}";
    }
}
