// The built-in programmatic rewards: the exact final-answer match reads GSM8K's `####`, `\boxed{}` or the last
// number and compares numbers by value; a prompt without an answer is an error; non-finite rewards are refused.

import Foundation
import Models
import Testing

@testable import Trainers

@Suite struct RewardFunctionTests {
    static func rollout(_ text: String, answer: String?) -> Rollout {
        Rollout(promptIDs: [1], completionIDs: [2], text: text, stopped: true, answer: answer)
    }

    @Test func finalAnswersAreReadAsGradersReadThem() {
        #expect(FinalAnswer.extract("Natalia sold 48/2 = 24 clips.\n#### 72") == "72")
        #expect(FinalAnswer.extract("so the total is \\boxed{\\frac{1}{2}} here") == "\\frac{1}{2}")
        #expect(FinalAnswer.extract("First 3 apples, then 1,250 pears.") == "1250")
        #expect(FinalAnswer.extract("It costs $18.50.") == "18.50")
        #expect(FinalAnswer.extract("-4 degrees") == "-4")
        #expect(FinalAnswer.extract("no digits at all") == nil)
        #expect(FinalAnswer.extract("\\boxed{12") == nil, "an unclosed box has no answer")
        #expect(FinalAnswer.equal("1000", "1000.0") && !FinalAnswer.equal("10", "100"))
    }

    @Test func exactAnswerScoresOneOnlyForTheRightAnswer() throws {
        let scores = try RewardFunction.exactAnswer([
            Self.rollout("The answer is 42.", answer: "#### 42"),
            Self.rollout("I think 41, no wait, \\boxed{42}", answer: "42"),
            Self.rollout("The answer is 41.", answer: "42"),
            Self.rollout("Forty-two.", answer: "42"),
        ])
        #expect(scores == [1, 1, 0, 0])
        #expect(throws: ConfigError.self) { try RewardFunction.exactAnswer([Self.rollout("42", answer: nil)]) }
    }

    @Test func nonFiniteRewardsAreErrorsNamingTheCompletion() {
        let nan = RewardFunction(name: "broken") { _ in .nan }
        do {
            _ = try nan([Self.rollout("some text", answer: nil)])
            Issue.record("a NaN reward passed")
        } catch {
            #expect("\(error)".contains("some text") && "\(error)".contains("finite"), "\(error)")
        }
    }
}
