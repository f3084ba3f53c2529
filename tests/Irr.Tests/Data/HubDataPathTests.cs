using Irr.Data;

namespace Irr.Tests.Data;

/// <summary>
/// <c>hf://</c> paths (issue 27 item 3), against huggingface_hub's own test cases (commit ee0a4510, 2026-08-20):
/// tests/test_utils_hf_uris.py (URI_SUCCESS_CASES with their round trips, URI_FAILURE_CASES) and
/// tests/test_hf_file_system.py (test_resolve_path: each root path with each path in the repo). Spaces, kernels and
/// buckets, which huggingface_hub parses, are refused here.
/// </summary>
public class HubDataPathTests
{
    private static (string, string, string, string) Parts(string text) =>
        HubDataPath.Parse(text) is var p ? (p.RepoType, p.RepoId, p.Revision, p.PathInRepo) : default;

    public static TheoryData<string, string, string, string, string, string> Success => new()
    {
        // uri, type, id, revision ("main" where the case has none), path, to_uri
        { "hf://my-org/my-model", "model", "my-org/my-model", "main", "", "hf://models/my-org/my-model" },
        { "hf://models/my-org/my-model", "model", "my-org/my-model", "main", "", "hf://models/my-org/my-model" },
        { "hf://models/my-org/my-model/config.json", "model", "my-org/my-model", "main", "config.json", "hf://models/my-org/my-model/config.json" },
        { "hf://my-org/my-model@v1.0", "model", "my-org/my-model", "v1.0", "", "hf://models/my-org/my-model@v1.0" },
        { "hf://models/my-org/my-model@dev/sub/file.bin", "model", "my-org/my-model", "dev", "sub/file.bin", "hf://models/my-org/my-model@dev/sub/file.bin" },
        { "hf://datasets/my-org/my-dataset", "dataset", "my-org/my-dataset", "main", "", "hf://datasets/my-org/my-dataset" },
        { "hf://datasets/my-org/my-dataset@v1/train.csv", "dataset", "my-org/my-dataset", "v1", "train.csv", "hf://datasets/my-org/my-dataset@v1/train.csv" },
        { "hf://datasets/foo/bar@refs/pr/10/file.csv", "dataset", "foo/bar", "refs/pr/10", "file.csv", "hf://datasets/foo/bar@refs/pr/10/file.csv" },
        { "hf://datasets/foo/bar@refs/convert/parquet/data.parquet", "dataset", "foo/bar", "refs/convert/parquet", "data.parquet", "hf://datasets/foo/bar@refs/convert/parquet/data.parquet" },
        { "hf://datasets/foo/bar@refs/convert/parquet-v2/data.parquet", "dataset", "foo/bar", "refs/convert/parquet-v2", "data.parquet", "hf://datasets/foo/bar@refs/convert/parquet-v2/data.parquet" },
        { "hf://datasets/foo/bar@refs/convert/duckdb.v1/data.db", "dataset", "foo/bar", "refs/convert/duckdb.v1", "data.db", "hf://datasets/foo/bar@refs/convert/duckdb.v1/data.db" },
        { "hf://datasets/foo/bar@refs%2Fpr%2F10/file.csv", "dataset", "foo/bar", "refs/pr/10", "file.csv", "hf://datasets/foo/bar@refs/pr/10/file.csv" },
        { "hf://my-org/my-model@feature%2Ffoo/config.json", "model", "my-org/my-model", "feature/foo", "config.json", "hf://models/my-org/my-model@feature%2Ffoo/config.json" },
        { "hf://my-org/my-model@refs/pr/3", "model", "my-org/my-model", "refs/pr/3", "", "hf://models/my-org/my-model@refs/pr/3" },
        { "hf://models/my-org/my-model/file@1.txt", "model", "my-org/my-model", "main", "file@1.txt", "hf://models/my-org/my-model/file@1.txt" },
        { "hf://my-org/my-model/sub/data@v2.bin", "model", "my-org/my-model", "main", "sub/data@v2.bin", "hf://models/my-org/my-model/sub/data@v2.bin" },
        // to_uri keeps an explicit "@main"; irr does not tell it from the default and writes none.
        { "hf://models/my-org/my-model@main/file@1.txt", "model", "my-org/my-model", "main", "file@1.txt", "hf://models/my-org/my-model/file@1.txt" },
        { "hf://a/b/c@v1", "model", "a/b", "main", "c@v1", "hf://models/a/b/c@v1" },
        // The data sets of docs/formats.md.
        { "hf://datasets/walledai/XSTest/data/train-00000-of-00001.parquet", "dataset", "walledai/XSTest", "main", "data/train-00000-of-00001.parquet",
            "hf://datasets/walledai/XSTest/data/train-00000-of-00001.parquet" },
        { "hf://datasets/OpenSafetyLab/Salad-Data@refs%2Fconvert%2Fparquet/base_set/train/0000.parquet", "dataset", "OpenSafetyLab/Salad-Data",
            "refs/convert/parquet", "base_set/train/0000.parquet", "hf://datasets/OpenSafetyLab/Salad-Data@refs/convert/parquet/base_set/train/0000.parquet" },
    };

    [Theory]
    [MemberData(nameof(Success))]
    public void ParsesAsHuggingfaceHubDoes(string uri, string type, string id, string revision, string path, string canonical)
    {
        Assert.Equal((type, id, revision, path), Parts(uri));
        Assert.Equal(canonical, HubDataPath.Parse(uri).ToString());
    }

    [Theory]
    [InlineData("hf://username/my_model", "model", "username/my_model", "main")]
    [InlineData("hf://username/my_model@dev", "model", "username/my_model", "dev")]
    [InlineData("hf://datasets/username/my_dataset", "dataset", "username/my_dataset", "main")]
    [InlineData("hf://datasets/username/my_dataset@dev", "dataset", "username/my_dataset", "dev")]
    [InlineData("hf://datasets/username/my_dataset@refs/convert/parquet", "dataset", "username/my_dataset", "refs/convert/parquet")]
    [InlineData("hf://username/my_model@refs/pr/10", "model", "username/my_model", "refs/pr/10")]
    [InlineData("hf://username/my_model@refs%2Fpr%2F10", "model", "username/my_model", "refs/pr/10")]
    public void ResolvesHfFileSystemsRootPathsWithEachPathInTheRepo(string root, string type, string id, string revision)
    {
        foreach (string path in new[] { "", "file.txt", "path/to/file", "path/to/@not-a-revision.txt" })
            Assert.Equal((type, id, revision, path), Parts(path.Length == 0 ? root : root + "/" + path));
    }

    [Theory]
    [InlineData("gpt2", "not a Hub path")]
    [InlineData("hf:/gpt2", "not a Hub path")]
    [InlineData("/local/path/file.txt", "not a Hub path")]
    [InlineData("hf://", "nothing after 'hf://'")]
    [InlineData("hf://datasets", "nothing after 'datasets'")]
    [InlineData("hf://datasets/", "no repo ID")]
    [InlineData("hf://models/", "no repo ID")]
    [InlineData("hf://dataset/foo/bar", "the type prefix is plural: 'datasets/', not 'dataset/'")]
    [InlineData("hf://model/my-org/my-model", "the type prefix is plural")]
    [InlineData("hf://space/user/my-space", "the type prefix is plural")]
    [InlineData("hf://gpt2", "the repo ID must be 'namespace/name', not 'gpt2'")]
    [InlineData("hf://models/gpt2", "the repo ID must be 'namespace/name'")]
    [InlineData("hf://datasets/squad", "the repo ID must be 'namespace/name'")]
    [InlineData("hf://gpt2@v1", "the repo ID must be 'namespace/name'")]
    [InlineData("hf://gpt2@v1/config.json", "the repo ID must be 'namespace/name'")]
    [InlineData("hf://my-org/my-model@", "empty revision after '@'")]
    [InlineData("hf://datasets/foo/bar@/file", "empty revision after '@'")]
    [InlineData("hf://@v1/file", "no repo ID before '@'")]
    [InlineData("hf://datasets/foo/.invalid", "'foo/.invalid': a repo ID holds letters")]
    [InlineData("hf://models/foo--bar/baz", "'foo--bar/baz': a repo ID cannot hold '--' or '..'")]
    [InlineData("hf://models/org/m//sub", "empty segment")]
    [InlineData("hf://models/org/m/sub//dir", "empty segment")]
    [InlineData("hf://models/org/m@main//file.txt", "empty segment")]
    [InlineData("hf://datasets/foo/bar@refs/pr/10//file.csv", "empty segment")]
    // Refused here, parsed by huggingface_hub: Spaces, kernels, buckets, and a path out of the repo.
    [InlineData("hf://spaces/user/my-space/app.py", "space repos are not read")]
    [InlineData("hf://kernels/my-org/my-kernel", "kernel repos are not read")]
    [InlineData("hf://buckets/my-org/my-bucket/sub/path", "bucket repos are not read")]
    [InlineData("hf://datasets/foo/bar/../../../etc/passwd", "the path has a '.' or '..' segment")]
    public void RefusesWithOneLineNamingThePath(string text, string problem)
    {
        string message = Assert.Throws<IrrException>(() => HubDataPath.Parse(text)).Message;
        Assert.StartsWith(text + ": ", message);
        Assert.Contains(problem, message);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public void TellsHubPathsFromLocalOnes()
    {
        Assert.True(HubDataPath.IsHubPath("hf://datasets/walledai/XSTest/data/train-00000-of-00001.parquet"));
        Assert.False(HubDataPath.IsHubPath("data/xstest.parquet"));
        Assert.False(HubDataPath.IsHubPath("walledai/XSTest"));
    }

    [Fact]
    public void UnquotesAsUrllibDoes()
    {
        // urllib.parse.unquote: %XX runs are UTF-8 ("%C3%A9" is é), a lone '%' or a bad escape stays as it is.
        Assert.Equal("v-é", HubDataPath.Parse("hf://a/b@v-%C3%A9/f").Revision);
        Assert.Equal("100%", HubDataPath.Parse("hf://a/b@100%/f").Revision);
        Assert.Equal("%zz", HubDataPath.Parse("hf://a/b@%zz/f").Revision);
    }
}
