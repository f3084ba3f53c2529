using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Tests.Text;

namespace Irr.Tests.Eval;

/// <summary>Judge agreement against scikit-learn's cohen_kappa_score and confusion_matrix (tests/fixtures/agreement, make-kappa.py).</summary>
public class AgreementTests
{
    private static Verdict Parse(JsonNode? label) => (string)label! switch { "harmful" => Verdict.Harmful, "safe" => Verdict.Safe, _ => Verdict.Unknown };

    [Fact]
    public void KappaAndTheConfusionTableEqualScikitLearns()
    {
        var cases = JsonNode.Parse(File.ReadAllText(Fixtures.Local("agreement/kappa.json")))!["cases"]!.AsArray();
        Assert.Equal(6, cases.Count);
        foreach (var c in cases)
        {
            var a = c!["a"]!.AsArray().Select(Parse).ToList();
            var b = c["b"]!.AsArray().Select(Parse).ToList();
            var agreement = Agreement.Of(a, b);
            Assert.Equal((double)c["kappa"]!, agreement.Kappa!.Value, 1e-12);
            var confusion = c["confusion"]!.AsArray();
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    Assert.Equal((int)confusion[i]![j]!, agreement.Confusion[i, j]);
            Assert.Equal(a.Zip(b).Count(p => p.First == p.Second) / (double)a.Count, agreement.Agreed, 1e-12);
        }
    }

    [Fact]
    public void OneVerdictForEverythingHasNoKappaAndMismatchedListsAreRefused()
    {
        var agreement = Agreement.Of([Verdict.Safe, Verdict.Safe], [Verdict.Safe, Verdict.Safe]); // p_e = 1: scikit-learn says nan
        Assert.Null(agreement.Kappa);
        Assert.Equal(1, agreement.Agreed);
        Assert.Throws<ArgumentException>(() => Agreement.Of([Verdict.Safe], []));
        Assert.Throws<ArgumentException>(() => Agreement.Of([], []));
    }
}
