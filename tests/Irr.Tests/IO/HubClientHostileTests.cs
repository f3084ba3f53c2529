using System.Net;
using Irr.IO;

namespace Irr.Tests.IO;

/// <summary>
/// <see cref="HubClient"/> against a hostile or misconfigured server, answered by hand (a stub handler): what
/// huggingface_hub (requests' <c>should_strip_auth</c>: no token on another host or over a downgrade from https to http) and
/// the project's rule (one line, never a stack trace) say should happen.
/// </summary>
public class HubClientHostileTests
{
    private const string Commit = "0123456789abcdef0123456789abcdef01234567";
    private const string Token = "hf_secret_token_for_tests";

    private sealed class Stub(Func<HttpRequestMessage, HttpResponseMessage> answer) : HttpMessageHandler
    {
        public List<(string Url, string? Authorization)> Seen { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (Seen) Seen.Add((request.RequestUri!.AbsoluteUri, request.Headers.Authorization?.ToString()));
            return Task.FromResult(answer(request));
        }
    }

    /// <summary>A HEAD answer for tokenizer.json redirecting its body to <paramref name="location"/>, and the body itself anywhere else.</summary>
    private static HttpResponseMessage Answer(HttpRequestMessage request, string location, byte[] body)
    {
        if (request.Method == HttpMethod.Head)
        {
            var head = new HttpResponseMessage(HttpStatusCode.Found);
            head.Headers.TryAddWithoutValidation("X-Repo-Commit", Commit);
            head.Headers.TryAddWithoutValidation("X-Linked-Etag", "\"" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body)) + "\"");
            head.Headers.TryAddWithoutValidation("X-Linked-Size", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
            head.Headers.TryAddWithoutValidation("Location", location);
            head.Content = new ByteArrayContent([]);
            return head;
        }
        return new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(body) };
    }

    [Fact]
    public void TheTokenIsNotSentOverADowngradeFromHttpsToHttpOnTheSameHost()
    {
        using var dir = new TempDir();
        byte[] body = "{\"version\": \"1.0\"}"u8.ToArray();
        var stub = new Stub(r => Answer(r, "http://hub.example/cdn/blob", body));
        var client = new HubClient(new HubSettings("https://hub.example", Token, dir["hub"], false), stub);

        client.File("org/name", "main", "model", "tokenizer.json");

        Assert.Contains(stub.Seen, s => s.Url.StartsWith("https://hub.example/org/name/resolve/", StringComparison.Ordinal) && s.Authorization == "Bearer " + Token);
        Assert.Contains(stub.Seen, s => s.Url == "http://hub.example/cdn/blob");
        Assert.All(stub.Seen.Where(s => s.Url.StartsWith("http://", StringComparison.Ordinal)), s => Assert.Null(s.Authorization));
    }

    [Theory]
    [InlineData("file:///etc/passwd")]
    [InlineData("ftp://hub.example/blob")]
    public void ARedirectToAnotherSchemeIsOneLine(string location)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["hub"]);
        var stub = new Stub(r => Answer(r, location, "x"u8.ToArray()));
        var client = new HubClient(new HubSettings("https://hub.example", null, dir["hub"], false), stub);

        var e = Assert.Throws<IrrException>(() => client.File("org/name", "main", "model", "tokenizer.json"));

        Assert.Contains("org/name@main: tokenizer.json", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain(Directory.EnumerateFiles(dir["hub"], "*", SearchOption.AllDirectories), f => f.Contains("snapshots", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("huggingface.co")]
    [InlineData("ftp://hub.example")]
    [InlineData("https://")]
    public void AnEndpointThatIsNotAnHttpUrlIsOneLineNamingHfEndpoint(string endpoint)
    {
        using var dir = new TempDir();
        var stub = new Stub(_ => throw new InvalidOperationException("no request should be made"));
        // Refused when the settings are made, before any client exists or any request is made.
        var error = Assert.Throws<IrrException>(() => new HubClient(new HubSettings(endpoint, null, dir["hub"], false), stub)).Message;
        Assert.Equal($"HF_ENDPOINT '{endpoint}': not an http(s) URL", error);
        Assert.Empty(stub.Seen);
    }

    [Fact]
    public void AnEtagTooLongForAFileNameIsRefusedAsNotABlobName()
    {
        // blobs/<etag>.incomplete must fit a file name (255 bytes): a longer ETag is the server's fault, said so.
        using var dir = new TempDir();
        string etag = new('a', 250);
        var stub = new Stub(r =>
        {
            var answer = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent("{}"u8.ToArray()) };
            answer.Headers.TryAddWithoutValidation("X-Repo-Commit", Commit);
            answer.Headers.TryAddWithoutValidation("ETag", "\"" + etag + "\"");
            return answer;
        });
        var client = new HubClient(new HubSettings("https://hub.example", null, dir["hub"], false), stub);

        var e = Assert.Throws<IrrException>(() => client.File("org/name", "main", "model", "config.json"));

        Assert.StartsWith($"org/name@main: config.json: the server's ETag '\"{etag}\"' is missing or not a blob name", e.Message);
    }

    [Theory]
    [InlineData("blobs")]
    [InlineData("snapshots/" + Commit)]
    [InlineData("refs")]
    public void ACacheFolderLinkedOutsideTheRepoIsNotWrittenThrough(string folder)
    {
        // Someone else's cache: a folder of the repo is a symlink to a directory outside it. Nothing is written there.
        using var dir = new TempDir();
        string outside = dir["outside"];
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "keep.txt"), "mine");
        string link = Path.Combine(dir["hub"], "models--org--name", folder);
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        Directory.CreateSymbolicLink(link, outside);
        byte[] body = "{}"u8.ToArray();
        var stub = new Stub(r =>
        {
            var answer = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(r.Method == HttpMethod.Head ? [] : body) };
            answer.Headers.TryAddWithoutValidation("X-Repo-Commit", Commit);
            answer.Headers.TryAddWithoutValidation("ETag", "\"" + FakeHubServer.GitBlobSha1(body) + "\"");
            answer.Headers.TryAddWithoutValidation("X-Linked-Size", "2");
            return answer;
        });
        var client = new HubClient(new HubSettings("https://hub.example", null, dir["hub"], false), stub);

        var e = Assert.Throws<IrrException>(() => client.File("org/name", "main", "model", "config.json"));

        Assert.Contains("links outside the repo folder", e.Message);
        Assert.Equal(["keep.txt"], Directory.GetFileSystemEntries(outside).Select(Path.GetFileName));
    }
}
